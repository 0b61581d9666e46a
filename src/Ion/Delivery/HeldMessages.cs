using Ion.Queues;

namespace Ion.Delivery;

/// <summary>
/// The messages this process holds (received, not yet completed or given back), kept hidden by a heartbeat for as
/// long as they are held, whatever the rate limit or the relay's speed: otherwise a batch that outlives the
/// visibility timeout becomes visible to other slots and processes while it is being sent, and is sent twice.
/// </summary>
/// <remarks>
/// <para>The heartbeat can fail (the store is locked or unreachable for longer than the timeout). So before a message
/// goes to the relay, <see cref="ConfirmAsync"/> checks that its hold cannot have run out, and asks the queue when it
/// might have: a message another receiver took meanwhile is let go, not sent a second time.</para>
/// <para>A slot takes a message out before it completes, returns or dead-letters it, and never while a heartbeat is in
/// flight: a heartbeat that ran after a return would otherwise hide the message again for a whole visibility timeout
/// (SQS keeps a receipt valid after ChangeMessageVisibility).</para>
/// </remarks>
public sealed class HeldMessages(IMessageQueue queue, TimeSpan visibilityTimeout, TimeProvider time, ILogger<HeldMessages> logger) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    // Each held message, with the time its hold is sure to last until (a little before the store's own deadline).
    private readonly Dictionary<QueuedMessage, DateTimeOffset> _held = new(ReferenceEqualityComparer.Instance);

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

    /// <summary>Whether another slot of this process holds this copy already: a receive can hand it out again when its
    /// hold ran out while the store could not be written.</summary>
    public bool Holds(QueuedMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        lock (_held)
            return _held.Keys.Any(m => m.QueueMessageId == message.QueueMessageId && !ReferenceEquals(m, message));
    }

    public void Add(IEnumerable<QueuedMessage> messages)
    {
        var until = SureUntil();
        lock (_held)
        {
            foreach (var message in messages)
                _held[message] = until;
        }
    }

    /// <summary>Stops keeping these hidden; waits for a heartbeat in flight to end first.</summary>
    public async Task RemoveAsync(IEnumerable<QueuedMessage> messages)
    {
        await _gate.WaitAsync(CancellationToken.None);
        try
        {
            lock (_held)
            {
                foreach (var message in messages)
                    _held.Remove(message);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>True when <paramref name="message"/> is still this process's to send: its hold is sure to last, or the
    /// queue says it is still ours and hides it for another timeout. Waits for a store that does not answer: sending
    /// a message that may be someone else's by now would risk a duplicate.</summary>
    public async Task<bool> ConfirmAsync(QueuedMessage message)
    {
        lock (_held)
        {
            if (_held.TryGetValue(message, out var until) && time.GetUtcNow() < until)
                return true;
        }
        await _gate.WaitAsync(CancellationToken.None);
        try
        {
            var pause = TimeSpan.FromMilliseconds(100);
            while (true)
            {
                try
                {
                    var ours = (await queue.KeepHiddenAsync([message], CancellationToken.None))[0];
                    lock (_held)
                    {
                        if (ours)
                            _held[message] = SureUntil();
                        else
                            _held.Remove(message);
                    }
                    return ours;
                }
                catch (StoreUnavailableException error)
                {
                    Log.HeartbeatFailed(logger, error.Message);
                    await Task.Delay(pause, time, CancellationToken.None);
                    pause = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(5).Ticks, pause.Ticks * 2));
                }
            }
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
                held = [.. _held.Keys];
            for (var start = 0; start < held.Length; start += IMessageQueue.MaxReceive)
            {
                var slice = held[start..Math.Min(held.Length, start + IMessageQueue.MaxReceive)];
                var until = SureUntil();
                var ours = await queue.KeepHiddenAsync(slice, CancellationToken.None);
                lock (_held)
                {
                    for (var i = 0; i < slice.Length; i++)
                    {
                        // A message that is no longer ours keeps its old deadline: ConfirmAsync will find out.
                        if (ours[i] && _held.ContainsKey(slice[i]))
                            _held[slice[i]] = until;
                    }
                }
            }
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

    // Taken before the store sets its deadline, and short of it by a third of the timeout for clocks and delays.
    private DateTimeOffset SureUntil() => time.GetUtcNow() + visibilityTimeout - Interval;

    public void Dispose() => _gate.Dispose();
}
