namespace Ion.Stores.Sqlite;

/// <summary>
/// Group commit: items that callers add while a write is under way wait and go together in the next write, so N
/// concurrent callers cost one transaction (and one fsync), not N. Each caller returns only once the write that
/// holds its item has finished, with the write's result for each of its own items, and sees that write's failure
/// if it failed.
/// </summary>
/// <remarks>The smallest version that serves ion: the first caller to find no write under way becomes the writer
/// and keeps writing rounds until nothing is pending; no thread or timer of its own.</remarks>
public sealed class GroupCommit<T, TResult>(Func<IReadOnlyList<T>, Task<IReadOnlyList<TResult>>> write)
{
    private readonly Lock _lock = new();
    private List<Pending> _pending = [];
    private bool _writing;

    public async Task<IReadOnlyList<TResult>> AddAsync(IReadOnlyList<T> items)
    {
        var pending = new Pending(items);
        bool writer;
        lock (_lock)
        {
            _pending.Add(pending);
            writer = !_writing;
            _writing = true;
        }
        if (writer)
            await WriteRoundsAsync();
        return await pending.Written.Task;
    }

    private async Task WriteRoundsAsync()
    {
        while (true)
        {
            List<Pending> round;
            lock (_lock)
            {
                if (_pending.Count == 0)
                {
                    _writing = false;
                    return;
                }
                round = _pending;
                _pending = [];
            }
            try
            {
                var results = await write([.. round.SelectMany(p => p.Items)]);
                var offset = 0;
                foreach (var pending in round)
                {
                    pending.Written.TrySetResult([.. results.Skip(offset).Take(pending.Items.Count)]);
                    offset += pending.Items.Count;
                }
            }
            catch (Exception error)
            {
                round.ForEach(p => p.Written.TrySetException(error));
            }
        }
    }

    private sealed record Pending(IReadOnlyList<T> Items)
    {
        public TaskCompletionSource<IReadOnlyList<TResult>> Written { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
