using Ion.Queues;

namespace Ion.Delivery;

/// <summary>
/// The messages this process holds (received, not yet completed or given back), kept hidden by a heartbeat for as
/// long as they are held, whatever the rate limit or the relay's speed: otherwise a batch that outlives the
/// visibility timeout becomes visible to other slots and processes while it is being sent, and is sent twice.
/// </summary>
/// <remarks>
/// A slot takes a message out before it completes, returns or dead-letters it, and never while a heartbeat is in
/// flight: a heartbeat that ran after a return would otherwise hide the message again for a whole visibility timeout
/// (SQS keeps a receipt valid after ChangeMessageVisibility).
/// </remarks>
public sealed class HeldMessages(IMessageQueue queue, TimeSpan visibilityTimeout, TimeProvider time, ILogger<HeldMessages> logger) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly HashSet<QueuedMessage> _held = new(ReferenceEqualityComparer.Instance);

    /// <summary>A third of the visibility timeout: two heartbeats may fail (a locked file, a slow network) before a held
    /// message shows again.</summary>
    public TimeSpan Interval => visibilityTimeout / 3;

    public int Count
    {
        get
        {
            lock (_held)
                return _held.Count;
        }
    }

    public void Add(IEnumerable<QueuedMessage> messages)
    {
        lock (_held)
            _held.UnionWith(messages);
    }

    /// <summary>Stops keeping these hidden; waits for a heartbeat in flight to end first.</summary>
    public async Task RemoveAsync(IEnumerable<QueuedMessage> messages)
    {
        await _gate.WaitAsync(CancellationToken.None);
        try
        {
            lock (_held)
                _held.ExceptWith(messages);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The heartbeat: every <see cref="Interval"/>, hides everything held for another visibility timeout.</summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
                await BeatAsync();
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    internal async Task BeatAsync()
    {
        await _gate.WaitAsync(CancellationToken.None);
        try
        {
            QueuedMessage[] held;
            lock (_held)
                held = [.. _held];
            for (var start = 0; start < held.Length; start += IMessageQueue.MaxReceive)
                await queue.KeepHiddenAsync(held[start..Math.Min(held.Length, start + IMessageQueue.MaxReceive)], CancellationToken.None);
        }
        catch (StoreUnavailableException error)
        {
            // The next beat tries again; two missed beats still leave a third of the timeout.
            Log.HeartbeatFailed(logger, error.Message);
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();
}
