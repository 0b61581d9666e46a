using Ion.Log;

namespace Ion.Queues;

/// <summary>Moves dead letters back to the queue with fresh attempts, and tells the delivery log: used by the API,
/// the CLI and the <c>redrive</c> action message alike.</summary>
/// <remarks>
/// The log is told first that the letters are being redriven, then the store moves them, then the log records them
/// queued. A copy that a worker takes between the two steps, or after a crash between them, is recognised by its
/// mark and delivered; an unmarked copy of a dead letter is dead-lettered again, so nothing is ever dropped unseen.
/// </remarks>
public sealed class Redriver(IMessageQueue queue, IDeliveryLog log, TimeProvider time)
{
    // Ids go to the store in slices of this many, so a redrive of everything never holds one huge transaction.
    private const int Slice = 500;

    /// <summary>Redrives the dead letters with these ids, or all of them (null). Returns the ids moved.</summary>
    public async Task<IReadOnlyList<string>> RedriveAsync(IReadOnlyCollection<string>? ids, CancellationToken cancellationToken)
    {
        if (ids is not null)
            return await MoveAsync([.. ids.Distinct(StringComparer.Ordinal)], cancellationToken);

        List<string> moved = [];
        while (true)
        {
            var dead = await log.ListDeadLettersAsync(new DeadLetterQuery(Limit: Slice), cancellationToken);
            var round = await MoveAsync([.. dead.Select(d => d.Id)], cancellationToken);
            moved.AddRange(round);
            if (dead.Count < Slice || round.Count == 0)
                break;
        }
        // Whatever the store holds that the log does not list as dead (a message that killed its worker every time and
        // was moved by the store itself) goes back too.
        var rest = await queue.RedriveAsync(null, cancellationToken);
        await log.RecordRedrivenAsync(rest, time.GetUtcNow(), cancellationToken);
        moved.AddRange(rest);
        return [.. moved.Distinct(StringComparer.Ordinal)];
    }

    /// <summary>Redrives the dead letters the query finds (failure class, recipient domain, time).</summary>
    public async Task<IReadOnlyList<string>> RedriveMatchingAsync(DeadLetterQuery query, CancellationToken cancellationToken)
    {
        var dead = await log.ListDeadLettersAsync(query, cancellationToken);
        return await MoveAsync([.. dead.Select(d => d.Id)], cancellationToken);
    }

    private async Task<IReadOnlyList<string>> MoveAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        List<string> moved = [];
        for (var start = 0; start < ids.Count; start += Slice)
        {
            var slice = ids.Skip(start).Take(Slice).ToList();
            var at = time.GetUtcNow();
            await log.BeginRedriveAsync(slice, at, cancellationToken);
            var round = await queue.RedriveAsync(slice, cancellationToken);
            await log.RecordRedrivenAsync(round, at, cancellationToken);
            moved.AddRange(round);
        }
        return moved;
    }
}
