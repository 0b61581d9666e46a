using Ion.Log;

namespace Ion.Queues;

/// <summary>Moves dead letters back to the queue and tells the delivery log: used by the API, the CLI and the
/// <c>redrive</c> action message alike.</summary>
public sealed class Redriver(IMessageQueue queue, IDeliveryLog log, TimeProvider time)
{
    public async Task<IReadOnlyList<string>> RedriveAsync(IReadOnlyCollection<string>? ids, CancellationToken cancellationToken)
    {
        var redrivenAt = time.GetUtcNow();
        var moved = await queue.RedriveAsync(ids, cancellationToken);
        await log.RecordQueuedAsync(moved, redrivenAt, cancellationToken);
        return moved;
    }
}
