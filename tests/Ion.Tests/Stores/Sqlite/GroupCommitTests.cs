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
        var commit = new GroupCommit<int>(async items =>
        {
            lock (rounds)
                rounds.Add([.. items]);
            if (rounds.Count == 1)
            {
                firstWriteEntered.SetResult();
                await releaseFirstWrite.Task;
            }
        });

        var first = commit.AddAsync([0]);
        await firstWriteEntered.Task;
        var later = Enumerable.Range(1, 5).Select(i => commit.AddAsync([i, i * 10])).ToList();
        Assert.False(first.IsCompleted);
        Assert.All(later, t => Assert.False(t.IsCompleted));

        releaseFirstWrite.SetResult();
        await Task.WhenAll([first, .. later]);

        Assert.Equal(2, rounds.Count);
        Assert.Equal([0], rounds[0]);
        Assert.Equal([1, 10, 2, 20, 3, 30, 4, 40, 5, 50], rounds[1]);
    }

    [Fact]
    public async Task AFailedWrite_FailsEveryCallerInIt_AndTheNextRoundStillRuns()
    {
        var calls = 0;
        var commit = new GroupCommit<string>(items =>
        {
            if (Interlocked.Increment(ref calls) == 1)
                throw new IOException("disk full");
            return Task.CompletedTask;
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
        var commit = new GroupCommit<int>(async items =>
        {
            await Task.Yield();
            lock (written)
                written.AddRange(items);
        });

        await Task.WhenAll(Enumerable.Range(0, 500).Select(i => Task.Run(() => commit.AddAsync([i]), TestContext.Current.CancellationToken)));

        Assert.Equal(Enumerable.Range(0, 500), written.Order());
    }
}
