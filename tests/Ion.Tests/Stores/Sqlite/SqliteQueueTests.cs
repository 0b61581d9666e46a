using System.Collections.Concurrent;
using System.Diagnostics;
using Ion.Log;
using Ion.Queues;
using Ion.Stores.Sqlite;
using Ion.Tests.Fixtures;
using Ion.Tests.Queues;
using Microsoft.Extensions.Time.Testing;

namespace Ion.Tests.Stores.Sqlite;

public sealed class SqliteQueueTests : QueueContract, IDisposable
{
    private static readonly TimeSpan Visibility = TimeSpan.FromMinutes(5);

    private readonly string _folder = Directory.CreateTempSubdirectory("ion-queue-").FullName;
    private string DatabasePath => Path.Combine(_folder, "queue.db");
    private readonly List<SqliteQueue> _queues = [];
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 9, 0, 0, TimeSpan.Zero));

    protected override Task<IMessageQueue> CreateQueueAsync(TimeSpan visibilityTimeout) =>
        Task.FromResult<IMessageQueue>(Open(visibilityTimeout, TimeProvider.System));

    public void Dispose()
    {
        foreach (var queue in _queues)
            queue.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task Enqueued_SurvivesANewInstanceOnTheSameFile()
    {
        using (var writer = Open(Visibility, _time))
            await writer.EnqueueAsync([new OutgoingMessage("id-1", "{\"n\":1}")], Cancellation);

        using var reader = Open(Visibility, _time);
        var message = Assert.Single(await reader.ReceiveAsync(10, Cancellation));

        Assert.Equal("id-1", message.Id);
        Assert.Equal("{\"n\":1}", message.Body);
    }

    [Fact]
    public async Task ReceivedByAnInstanceThatIsGone_IsReceivedAgainByTheNext_AtOnce_NotAfterTheVisibilityTimeout()
    {
        var gone = Open(Visibility, _time);
        await gone.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        Assert.Single(await gone.ReceiveAsync(10, Cancellation));
        gone.Dispose();

        using var next = Open(Visibility, _time);
        var message = Assert.Single(await next.ReceiveAsync(10, Cancellation));

        Assert.Equal(2, message.ReceiveCount);
    }

    [Fact]
    public async Task ReceivedByAnInstanceThatIsAlive_StaysHiddenFromAnother()
    {
        var holder = Open(Visibility, _time);
        await holder.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        Assert.Single(await holder.ReceiveAsync(10, Cancellation));

        using var other = Open(Visibility, _time);
        _time.Advance(TimeSpan.FromSeconds(10));

        Assert.Empty(await other.ReceiveAsync(10, Cancellation));
    }

    [Fact]
    public async Task ReturnedWithADelay_ByAnInstanceThatIsGone_WaitsOutItsDelay()
    {
        var gone = Open(Visibility, _time);
        await gone.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        await gone.ReturnAsync([Assert.Single(await gone.ReceiveAsync(10, Cancellation))], TimeSpan.FromMinutes(1), Cancellation);
        gone.Dispose();

        using var next = Open(Visibility, _time);
        Assert.Empty(await next.ReceiveAsync(10, Cancellation));
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.Single(await next.ReceiveAsync(10, Cancellation));
    }

    [Fact]
    public async Task Scheduled_StaysHiddenUntilExactlyItsTime_HoweverFarAhead_CountedAsDelayed()
    {
        var queue = Open(Visibility, _time);
        var sendAt = _time.GetUtcNow().AddDays(30);
        await queue.EnqueueAsync([new OutgoingMessage("later", "{}", NotBefore: sendAt), new OutgoingMessage("now", "{}")], Cancellation);

        var now = Assert.Single(await queue.ReceiveAsync(10, Cancellation));
        Assert.Equal("now", now.Id);
        await queue.CompleteAsync([now], Cancellation);
        var counts = await queue.CountAsync(Cancellation);
        Assert.Equal((0, 1), (counts.Ready, counts.Delayed));
        _time.Advance(sendAt - _time.GetUtcNow() - TimeSpan.FromMilliseconds(1));
        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        var later = Assert.Single(await queue.ReceiveAsync(10, Cancellation));
        Assert.Equal(("later", 1), (later.Id, later.ReceiveCount));
    }

    [Fact]
    public async Task Scheduled_WithATimeAlreadyPast_IsVisibleAtOnce()
    {
        var queue = Open(Visibility, _time);

        await queue.EnqueueAsync([new OutgoingMessage("late", "{}", NotBefore: _time.GetUtcNow().AddHours(-1))], Cancellation);

        Assert.Equal("late", Assert.Single(await queue.ReceiveAsync(10, Cancellation)).Id);
    }

    [Fact]
    public async Task Received_StaysHiddenForExactlyTheVisibilityTimeout()
    {
        var queue = Open(Visibility, _time);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        Assert.Single(await queue.ReceiveAsync(10, Cancellation));

        _time.Advance(Visibility - TimeSpan.FromMilliseconds(1));
        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Single(await queue.ReceiveAsync(10, Cancellation));
    }

    [Fact]
    public async Task KeptHidden_IsHiddenForExactlyAnotherVisibilityTimeoutFromNow()
    {
        var queue = Open(Visibility, _time);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        var held = Assert.Single(await queue.ReceiveAsync(10, Cancellation));
        _time.Advance(TimeSpan.FromMinutes(4));

        await queue.KeepHiddenAsync([held], Cancellation);

        _time.Advance(Visibility - TimeSpan.FromMilliseconds(1));
        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Single(await queue.ReceiveAsync(10, Cancellation));
    }

    [Fact]
    public async Task Return_HidesForExactlyTheDelay_AndForgetsTheReceipt()
    {
        var queue = Open(Visibility, _time);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        var message = Assert.Single(await queue.ReceiveAsync(10, Cancellation));

        await queue.ReturnAsync([message], TimeSpan.FromSeconds(30), Cancellation);
        // The handle is stale now: neither this nor a late heartbeat may move the message again.
        await queue.ReturnAsync([message], TimeSpan.FromHours(1), Cancellation);
        Assert.Equal([false], await queue.KeepHiddenAsync([message], Cancellation));

        _time.Advance(TimeSpan.FromSeconds(30) - TimeSpan.FromMilliseconds(1));
        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        var retried = Assert.Single(await queue.ReceiveAsync(10, Cancellation));
        Assert.Equal(2, retried.ReceiveCount);
    }

    [Fact]
    public async Task Count_TellsReadyDelayedAndDead()
    {
        var queue = Open(Visibility, _time);
        await queue.EnqueueAsync([.. Enumerable.Range(0, 6).Select(i => new OutgoingMessage($"id-{i}", "{}"))], Cancellation);
        var received = await queue.ReceiveAsync(3, Cancellation);
        await queue.ReturnAsync([received[0]], TimeSpan.FromMinutes(1), Cancellation);
        await queue.DeadLetterAsync(received[1], Note("550"), Cancellation);

        // The oldest is id-0, queued at the start and handed back, which keeps its time.
        var queuedAt = new DateTimeOffset(2026, 3, 1, 9, 0, 0, TimeSpan.Zero);
        Assert.Equal(new QueueCounts(Ready: 3, Delayed: 2, Dead: 1, queuedAt), await queue.CountAsync(Cancellation));
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(new QueueCounts(Ready: 4, Delayed: 1, Dead: 1, queuedAt), await queue.CountAsync(Cancellation));
    }

    [Fact]
    public async Task Redriven_IsVisibleNow_AsFreshlyEnqueued()
    {
        var queue = Open(Visibility, _time);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        var dead = Assert.Single(await queue.ReceiveAsync(10, Cancellation));
        await queue.DeadLetterAsync(dead, Note("550"), Cancellation);
        _time.Advance(TimeSpan.FromHours(1));

        Assert.Equal(["id-1"], await queue.RedriveAsync(["id-1"], Cancellation));

        var message = Assert.Single(await queue.ReceiveAsync(10, Cancellation));
        Assert.Equal(_time.GetUtcNow(), message.EnqueuedAt);
        Assert.Equal(1, message.ReceiveCount);
    }

    [Fact]
    public async Task RedriveOfNoIds_MovesNothing()
    {
        var queue = Open(Visibility, _time);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        await queue.DeadLetterAsync(Assert.Single(await queue.ReceiveAsync(10, Cancellation)), Note("550"), Cancellation);

        Assert.Empty(await queue.RedriveAsync([], Cancellation));
        Assert.Equal(1, (await queue.CountAsync(Cancellation)).Dead);
    }

    [Fact]
    public async Task SameIdEnqueuedTwice_IsQueuedOnce_TheSecondIsAlreadyQueued()
    {
        var queue = Open(Visibility, _time);

        Assert.Equal([EnqueueResult.Queued], await queue.EnqueueAsync([new OutgoingMessage("same", "{\"n\":1}")], Cancellation));
        Assert.Equal([EnqueueResult.AlreadyQueued], await queue.EnqueueAsync([new OutgoingMessage("same", "{\"n\":2}")], Cancellation));
        var held = Assert.Single(await queue.ReceiveAsync(10, Cancellation));
        // In flight is as good as waiting.
        Assert.Equal([EnqueueResult.AlreadyQueued], await queue.EnqueueAsync([new OutgoingMessage("same", "{\"n\":3}")], Cancellation));

        Assert.Equal("{\"n\":1}", held.Body);
        await queue.CompleteAsync([held], Cancellation);
        Assert.Equal([EnqueueResult.Queued], await queue.EnqueueAsync([new OutgoingMessage("same", "{\"n\":4}")], Cancellation));
    }

    [Fact]
    public async Task DeadLetter_WithStaleReceipt_IsIgnored()
    {
        var queue = Open(Visibility, _time);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        var stale = Assert.Single(await queue.ReceiveAsync(10, Cancellation));
        _time.Advance(Visibility);
        var current = Assert.Single(await queue.ReceiveAsync(10, Cancellation));

        await queue.DeadLetterAsync(stale, Note("550"), Cancellation);

        Assert.Equal(0, (await queue.CountAsync(Cancellation)).Dead);
        await queue.CompleteAsync([current], Cancellation);
        Assert.Equal(new QueueCounts(0, 0, 0), await queue.CountAsync(Cancellation));
    }

    [Fact]
    public async Task ReceiptHandleOfAnotherBackend_IsRefused()
    {
        var queue = Open(Visibility, _time);
        var foreign = new QueuedMessage("id-1", "{}", _time.GetUtcNow(), 1, "sqs-id", "AQEBzbVv...sqs-handle");

        await Assert.ThrowsAsync<ArgumentException>(() => queue.CompleteAsync([foreign], Cancellation));
    }

    [Fact]
    public async Task Constructor_TouchesNoFile_FirstUseCreatesFolderAndSchema()
    {
        var path = Path.Combine(_folder, "not", "yet", "queue.db");

        var queue = Open(Visibility, _time, path);
        Assert.False(Directory.Exists(Path.Combine(_folder, "not")));

        Assert.Equal(new QueueCounts(0, 0, 0), await queue.CountAsync(Cancellation));
        Assert.True(File.Exists(path));
    }

    [Fact]
    public async Task ManyInstances_FirstUseAtOnce_AllCreateOrFindTheSchema()
    {
        var queues = Enumerable.Range(0, 4).Select(_ => Open(Visibility, _time)).ToList();

        await Task.WhenAll(queues.Select((q, i) => Task.Run(() => q.EnqueueAsync([new OutgoingMessage($"id-{i}", "{}")], Cancellation), Cancellation)));

        Assert.Equal(4, (await queues[0].CountAsync(Cancellation)).Ready);
    }

    [Fact]
    public async Task TwoInstancesOnOneFile_RacingProducersAndConsumers_DeliverEveryMessageExactlyOnce()
    {
        const int total = 500;
        // Separate instances have separate connections, so they meet only in SQLite's file locks,
        // as two processes would.
        var first = Open(Visibility, TimeProvider.System);
        var second = Open(Visibility, TimeProvider.System);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Cancellation);
        deadline.CancelAfter(TimeSpan.FromSeconds(60));
        var receipts = new ConcurrentDictionary<string, int>();
        var completed = 0;

        var producers = Enumerable.Range(0, 4).Select(p => Task.Run(async () =>
        {
            var queue = p % 2 == 0 ? first : second;
            var mine = Enumerable.Range(0, total).Where(i => i % 4 == p).Select(i => new OutgoingMessage($"m{i:D3}", $"{{\"n\":{i}}}"));
            // Batches of 1 to 5, so single and multi-row transactions interleave.
            foreach (var batch in mine.Chunk(1 + p))
                await queue.EnqueueAsync(batch, deadline.Token);
        }, deadline.Token));

        var consumers = Enumerable.Range(0, 4).Select(c => Task.Run(async () =>
        {
            var queue = c % 2 == 0 ? first : second;
            while (Volatile.Read(ref completed) < total)
            {
                var received = await queue.ReceiveAsync(1 + c * 3, deadline.Token);
                foreach (var message in received)
                {
                    receipts.AddOrUpdate(message.Id, 1, (_, n) => n + 1);
                    Assert.Equal(1, message.ReceiveCount);
                    await queue.CompleteAsync([message], deadline.Token);
                    Interlocked.Increment(ref completed);
                }
                if (received.Count == 0)
                    await Task.Delay(5, deadline.Token);
            }
        }, deadline.Token));

        await Task.WhenAll(producers.Concat(consumers));

        Assert.Equal(total, receipts.Count);
        Assert.All(receipts, r => Assert.Equal(1, r.Value));
        Assert.Equal(total, completed);
        // Each instance's completions are written with its next transaction; its count writes them first.
        await first.CountAsync(Cancellation);
        Assert.Equal(new QueueCounts(0, 0, 0), await second.CountAsync(Cancellation));
        Assert.Equal(new QueueCounts(0, 0, 0), await first.CountAsync(Cancellation));
    }

    [Fact]
    public async Task AnotherProcessHoldingTheWriteLock_MakesEnqueueWait_NotFail()
    {
        var queue = Open(Visibility, _time);
        await queue.CountAsync(Cancellation);
        using var other = Sqlite3Shell.Start(DatabasePath);
        await other.RunAsync("BEGIN IMMEDIATE;", Cancellation);

        // Microsoft.Data.Sqlite runs synchronously inside its async methods: without Task.Run the
        // wait for the lock would happen right here, before there is a task to look at.
        var enqueue = Task.Run(() => queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation), Cancellation);
        await Task.Delay(TimeSpan.FromMilliseconds(500), Cancellation);
        Assert.False(enqueue.IsCompleted);

        await other.RunAsync("COMMIT;", Cancellation);
        await enqueue.WaitAsync(TimeSpan.FromSeconds(5), Cancellation);
        Assert.Equal(["id-1"], await other.RunAsync("SELECT message_id FROM queue;", Cancellation));
    }

    [Fact]
    public async Task AnotherProcessKilledInsideAWriteTransaction_LeavesTheQueueWorking_WithoutItsWrite()
    {
        var queue = Open(Visibility, _time);
        await queue.CountAsync(Cancellation);
        using (var other = Sqlite3Shell.Start(DatabasePath))
        {
            await other.RunAsync("""
                BEGIN IMMEDIATE;
                INSERT INTO queue (message_id, body, enqueued_at, visible_at, receive_count)
                VALUES ('never-committed', '{}', 0, 0, 0);
                """, Cancellation);
            other.Kill();
        }

        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);

        Assert.Equal("id-1", Assert.Single(await queue.ReceiveAsync(10, Cancellation)).Id);
    }

    [Fact]
    public async Task Database_IsInWalMode_ForEveryProcess()
    {
        var queue = Open(Visibility, _time);
        await queue.CountAsync(Cancellation);
        using var other = Sqlite3Shell.Start(DatabasePath);

        // journal_mode=WAL is stored in the file, so a process that never asked for it gets it too.
        Assert.Equal(["wal"], await other.RunAsync("PRAGMA journal_mode;", Cancellation));
    }

    [Fact]
    public async Task Receive_OnAnEmptyQueue_WaitsForAnEnqueueByThisInstance_AndWakesAtOnce()
    {
        var queue = LongPolling(TimeSpan.FromSeconds(30));
        var started = Stopwatch.StartNew();

        var receiving = queue.ReceiveAsync(10, Cancellation);
        await Task.Delay(200, Cancellation);
        Assert.False(receiving.IsCompleted);
        await queue.EnqueueAsync([new OutgoingMessage("late", "{}")], Cancellation);

        Assert.Equal("late", Assert.Single(await receiving).Id);
        Assert.InRange(started.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Receive_OnAnEmptyQueue_FindsAnotherInstancesMessage_AfterTheWait()
    {
        var queue = LongPolling(TimeSpan.FromMilliseconds(300));
        using var other = Open(Visibility, TimeProvider.System);

        var receiving = queue.ReceiveAsync(10, Cancellation);
        await other.EnqueueAsync([new OutgoingMessage("from-elsewhere", "{}")], Cancellation);

        // The other instance can't wake this one; the second look after the wait finds the message.
        Assert.Equal("from-elsewhere", Assert.Single(await receiving).Id);
    }

    [Fact]
    public async Task Receive_OnAnEmptyQueue_ReturnsEmptyAfterTheWait()
    {
        var queue = LongPolling(TimeSpan.FromMilliseconds(200));

        var started = Stopwatch.StartNew();
        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
        Assert.True(started.Elapsed >= TimeSpan.FromMilliseconds(150), $"returned after {started.Elapsed}");
    }

    private SqliteQueue LongPolling(TimeSpan wait)
    {
        var queue = SqliteQueue.Open(
            DatabasePath,
            new SqliteQueueOptions { VisibilityTimeout = Visibility, ReceiveWaitTime = wait },
            TimeProvider.System);
        _queues.Add(queue);
        return queue;
    }

    private SqliteQueue Open(TimeSpan visibility, TimeProvider time, string? path = null)
    {
        var queue = SqliteQueue.Open(path ?? DatabasePath, new SqliteQueueOptions { VisibilityTimeout = visibility }, time);
        _queues.Add(queue);
        return queue;
    }
}
