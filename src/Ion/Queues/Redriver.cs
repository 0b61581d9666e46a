using Ion.Delivery;
using Ion.Events;
using Ion.Log;
using Microsoft.Extensions.Options;

namespace Ion.Queues;

/// <summary>Moves dead letters back to the queue with fresh attempts, and tells the delivery log: used by the API,
/// the CLI and the <c>redrive</c> action message alike.</summary>
/// <remarks>
/// The log is told first that the letters are being redriven, then the store moves them, then the log records them
/// queued. A copy that a worker takes between the two steps, or after a crash between them, is recognised by its
/// mark and delivered; an unmarked copy of a dead letter is dead-lettered again, so nothing is ever dropped unseen.
/// Letters move in slices, no faster than <see cref="DeliveryOptions.RedrivePerSecond"/>.
/// </remarks>
public sealed class Redriver(IMessageQueue queue, IDeliveryLog log, DeliveryEvents events, IOptions<DeliveryOptions> options, TimeProvider time, IonMetrics metrics)
{
    private const int MaxSlice = 500;

    /// <summary>Redrives the dead letters with these ids, or all of them (null). Returns the ids moved;
    /// <paramref name="progress"/> hears the running count.</summary>
    public async Task<IReadOnlyList<string>> RedriveAsync(IReadOnlyCollection<string>? ids, CancellationToken cancellationToken, IProgress<int>? progress = null)
    {
        var pace = new Pace(options.Value.RedrivePerSecond, time);
        if (ids is not null)
            return await MoveAsync([.. ids.Distinct(StringComparer.Ordinal)], pace, progress, cancellationToken);

        List<string> moved = [];
        while (true)
        {
            var dead = await log.ListDeadLettersAsync(new DeadLetterQuery(Limit: pace.Slice), cancellationToken);
            var round = await MoveAsync([.. dead.Select(d => d.Id)], pace, progress, cancellationToken, moved.Count);
            moved.AddRange(round);
            if (dead.Count < pace.Slice || round.Count == 0)
                break;
        }
        // Whatever the store holds that the log does not list as dead (a message that killed its worker again and
        // again and was moved by the store itself, as SQS's redrive policy does) goes back too.
        var rest = await queue.RedriveAsync(null, cancellationToken);
        await log.RecordRedrivenAsync(rest, time.GetUtcNow(), cancellationToken);
        await events.RedrivenAsync(rest, cancellationToken);
        metrics.Redriven(rest.Count);
        moved.AddRange(rest);
        progress?.Report(moved.Count);
        return [.. moved.Distinct(StringComparer.Ordinal)];
    }

    /// <summary>Redrives the dead letters the query finds (failure class, recipient domain, time).</summary>
    public async Task<IReadOnlyList<string>> RedriveMatchingAsync(DeadLetterQuery query, CancellationToken cancellationToken, IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(query);
        var dead = await log.ListDeadLettersAsync(query, cancellationToken);
        return await MoveAsync([.. dead.Select(d => d.Id)], new Pace(options.Value.RedrivePerSecond, time), progress, cancellationToken);
    }

    private async Task<IReadOnlyList<string>> MoveAsync(IReadOnlyList<string> ids, Pace pace, IProgress<int>? progress, CancellationToken cancellationToken, int before = 0)
    {
        List<string> moved = [];
        for (var start = 0; start < ids.Count; start += pace.Slice)
        {
            await pace.WaitAsync(cancellationToken);
            var slice = ids.Skip(start).Take(pace.Slice).ToList();
            var at = time.GetUtcNow();
            await log.BeginRedriveAsync(slice, at, cancellationToken);
            var round = await queue.RedriveAsync(slice, cancellationToken);
            await log.RecordRedrivenAsync(round, at, cancellationToken);
            await events.RedrivenAsync(round, cancellationToken);
            moved.AddRange(round);
            metrics.Redriven(round.Count);
            pace.Moved(slice.Count);
            progress?.Report(before + moved.Count);
        }
        return moved;
    }

    /// <summary>Slices of at most a second's worth, and a pause before a slice that would go over the rate.</summary>
    private sealed class Pace(double perSecond, TimeProvider time)
    {
        private readonly long _started = time.GetTimestamp();
        private long _moved;

        public int Slice { get; } = (int)Math.Clamp(perSecond, 1, MaxSlice);

        public void Moved(int count) => _moved += count;

        public async Task WaitAsync(CancellationToken cancellationToken)
        {
            var due = TimeSpan.FromSeconds(_moved / perSecond) - time.GetElapsedTime(_started);
            if (due > TimeSpan.Zero)
                await Task.Delay(due, time, cancellationToken);
        }
    }
}
