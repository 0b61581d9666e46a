using Ion.Stores.Sqlite;

namespace Ion.Tests.Stores.Sqlite;

public class GroupCommitTests
{
    [Fact]
    public async Task CallersArrivingDuringAWrite_GoTogetherInTheNextOne()
    {
        var firstWriteEntered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseFirstWrite = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var rounds = new List<int[]>();
        var commit = new GroupCommit<int, int>(async items =>
        {
            lock (rounds)
                rounds.Add([.. items]);
            if (rounds.Count == 1)
            {
                firstWriteEntered.SetResult();
                await releaseFirstWrite.Task;
            }
            return [.. items.Select(i => -i)];
        });

        var first = commit.AddAsync([0]);
        await firstWriteEntered.Task;
        var later = Enumerable.Range(1, 5).Select(i => commit.AddAsync([i, i * 10])).ToList();
        Assert.False(first.IsCompleted);
        Assert.All(later, t => Assert.False(t.IsCompleted));

        releaseFirstWrite.SetResult();
        await Task.WhenAll([first, .. later]);
        // Each caller gets the results of its own items, in its own order.
        Assert.Equal([0], await first);
        Assert.Equal([-3, -30], await later[2]);

        Assert.Equal(2, rounds.Count);
        Assert.Equal([0], rounds[0]);
        Assert.Equal([1, 10, 2, 20, 3, 30, 4, 40, 5, 50], rounds[1]);
    }

    [Fact]
    public async Task AFailedWrite_FailsEveryCallerInIt_AndTheNextRoundStillRuns()
    {
        var calls = 0;
        var commit = new GroupCommit<string, bool>(items =>
        {
            if (Interlocked.Increment(ref calls) == 1)
                throw new IOException("disk full");
            return Task.FromResult<IReadOnlyList<bool>>([.. items.Select(_ => true)]);
        });

        var error = await Assert.ThrowsAsync<IOException>(() => commit.AddAsync(["a"]));
        Assert.Equal("disk full", error.Message);
        await commit.AddAsync(["b"]);

        Assert.Equal(2, calls);
    }

    [Fact]
    public async Task ManyConcurrentCallers_AllReturn_AndEveryItemIsWrittenOnce()
    {
        var written = new List<int>();
        var commit = new GroupCommit<int, int>(async items =>
        {
            await Task.Yield();
            lock (written)
                written.AddRange(items);
            return [.. items.Select(i => i * 2)];
        });

        var results = await Task.WhenAll(Enumerable.Range(0, 500).Select(i => Task.Run(() => commit.AddAsync([i]), TestContext.Current.CancellationToken)));

        Assert.Equal(Enumerable.Range(0, 500), written.Order());
        Assert.Equal(Enumerable.Range(0, 500).Select(i => i * 2), results.Select(r => Assert.Single(r)));
    }
}
