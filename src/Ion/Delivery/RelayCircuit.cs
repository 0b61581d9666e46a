namespace Ion.Delivery;

/// <summary>
/// Whether the relay is usable. Open (relay down): deliveries wait and no message spends an attempt; the worker
/// probes the relay and closes the circuit when it answers. Health and metrics read it.
/// </summary>
public sealed class RelayCircuit(TimeProvider time)
{
    private readonly Lock _lock = new();
    private TaskCompletionSource _closed = Completed();
    private TaskCompletionSource _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsOpen { get; private set; }
    public string? LastError { get; private set; }
    public DateTimeOffset? OpenedAt { get; private set; }

    public void Open(string reason)
    {
        lock (_lock)
        {
            LastError = reason;
            if (IsOpen)
                return;
            IsOpen = true;
            OpenedAt = time.GetUtcNow();
            _closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _opened.TrySetResult();
        }
    }

    public void Close()
    {
        lock (_lock)
        {
            if (!IsOpen)
                return;
            IsOpen = false;
            OpenedAt = null;
            _opened = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _closed.TrySetResult();
        }
    }

    public Task WaitUntilClosedAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
            return _closed.Task.WaitAsync(cancellationToken);
    }

    public Task WaitUntilOpenAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
            return _opened.Task.WaitAsync(cancellationToken);
    }

    private static TaskCompletionSource Completed()
    {
        var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        source.SetResult();
        return source;
    }
}
