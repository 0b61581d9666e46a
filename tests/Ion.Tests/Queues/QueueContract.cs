using System.Diagnostics;
using Ion.Log;
using Ion.Queues;

namespace Ion.Tests.Queues;

// What every IMessageQueue backend must do, in the shape of Wolverine's TransportCompliance<T>.
// Real time only: the SQS subclass runs against an emulator whose clock can't be faked, so waits
// are short visibility timeouts and polls. Nothing here asserts ordering; the interface promises none.
public abstract class QueueContract
{
    // Longer than any test runs, so a message stays hidden unless the test means it to come back.
    protected static readonly TimeSpan LongVisibility = TimeSpan.FromSeconds(60);

    // SQS counts visibility in whole seconds; one second keeps the timeout tests short.
    protected static readonly TimeSpan ShortVisibility = TimeSpan.FromSeconds(1);

    // How long to poll for something that should arrive; generous for a loaded machine.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>A fresh, empty queue for one test. The subclass owns and disposes it.</summary>
    protected abstract Task<IMessageQueue> CreateQueueAsync(TimeSpan visibilityTimeout);

    protected static CancellationToken Cancellation => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Enqueued_IsReceivedOnce_WithBodyAndId()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        const string body = """{"action":"send","recipient":"zoë@example.com","subject":"Grüße, 日本 🚀","body_text":"ça va?"}""";
        var before = TimeProvider.System.GetUtcNow();

        Assert.Equal([EnqueueResult.Queued], await queue.EnqueueAsync([new OutgoingMessage("id-1", body)], Cancellation));
        var message = Assert.Single(await ReceiveAsync(queue, 1));

        Assert.Equal("id-1", message.Id);
        Assert.Equal(body, message.Body);
        Assert.Equal(1, message.ReceiveCount);
        Assert.False(string.IsNullOrEmpty(message.ReceiptHandle));
        Assert.False(string.IsNullOrEmpty(message.QueueMessageId));
        // A minute either way allows for an emulator whose clock is not quite ours.
        Assert.InRange(message.EnqueuedAt, before.AddMinutes(-1), TimeProvider.System.GetUtcNow().AddMinutes(1));
        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
    }

    [Fact]
    public async Task Enqueue_ReturnsOneResultPerMessage_InOrder()
    {
        var queue = await CreateQueueAsync(LongVisibility);

        var results = await queue.EnqueueAsync([.. Enumerable.Range(0, 5).Select(i => new OutgoingMessage($"id-{i}", "{}"))], Cancellation);

        Assert.Equal(5, results.Count);
        Assert.All(results, r => Assert.Equal(EnqueueResult.Queued, r));
    }

    [Fact]
    public async Task Received_IsInvisibleToASecondReceive()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);

        Assert.Single(await ReceiveAsync(queue, 1));

        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
    }

    [Fact]
    public async Task NeverCompleted_IsVisibleAgainAfterTheVisibilityTimeout_AsTheSameCopy_WithReceiveCountTwo()
    {
        var queue = await CreateQueueAsync(ShortVisibility);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        var first = Assert.Single(await ReceiveAsync(queue, 1));

        // The worker that received it "crashed": nothing completes, returns or keeps it hidden.
        var again = Assert.Single(await ReceiveAsync(queue, 1));

        Assert.Equal("id-1", again.Id);
        Assert.Equal(2, again.ReceiveCount);
        Assert.Equal(first.QueueMessageId, again.QueueMessageId);
        Assert.NotEqual(first.ReceiptHandle, again.ReceiptHandle);
    }

    [Fact]
    public async Task KeptHidden_StaysHiddenPastTheVisibilityTimeout()
    {
        var queue = await CreateQueueAsync(ShortVisibility);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        var held = Assert.Single(await ReceiveAsync(queue, 1));

        // A worker's heartbeat: keep it hidden, three times over the timeout.
        var seen = new List<QueuedMessage>();
        for (var beat = 0; beat < 3; beat++)
        {
            await queue.KeepHiddenAsync([held], Cancellation);
            seen.AddRange(await ReceiveForAsync(queue, ShortVisibility / 2));
        }

        Assert.Empty(seen);
        await queue.CompleteAsync([held], Cancellation);
    }

    [Fact]
    public async Task KeepHidden_SaysWhichMessagesAreStillOurs()
    {
        var queue = await CreateQueueAsync(ShortVisibility);
        await queue.EnqueueAsync([new OutgoingMessage("lost", "{}"), new OutgoingMessage("kept", "{}")], Cancellation);
        var held = (await ReceiveAsync(queue, 2)).OrderBy(m => m.Id).ToList();
        var kept = held[0];
        var lost = held[1];

        // "lost" is left to time out and another receive takes it; "kept" is kept hidden meanwhile.
        QueuedMessage? other = null;
        var waited = Stopwatch.StartNew();
        while (other is null)
        {
            Assert.True((await queue.KeepHiddenAsync([kept], Cancellation))[0]);
            other = (await queue.ReceiveAsync(10, Cancellation)).SingleOrDefault();
            Assert.True(waited.Elapsed < Patience, "the message left to time out never showed again");
            await Task.Delay(PollInterval, Cancellation);
        }

        Assert.Equal("lost", other.Id);
        Assert.Equal([true, false], await queue.KeepHiddenAsync([kept, lost], Cancellation));
        Assert.Equal([true], await queue.KeepHiddenAsync([other], Cancellation));
    }

    [Fact]
    public async Task Complete_DeletesTheMessage()
    {
        var queue = await CreateQueueAsync(ShortVisibility);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        var message = Assert.Single(await ReceiveAsync(queue, 1));

        await queue.CompleteAsync([message], Cancellation);

        // Hidden and deleted look the same until the visibility timeout has passed.
        Assert.Empty(await ReceiveForAsync(queue, ShortVisibility * 2));
    }

    [Fact]
    public async Task Complete_WithStaleReceipt_IsIgnored_AndTheMessageStays()
    {
        var queue = await CreateQueueAsync(ShortVisibility);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        var stale = Assert.Single(await ReceiveAsync(queue, 1));
        var current = Assert.Single(await ReceiveAsync(queue, 1));

        await queue.CompleteAsync([stale], Cancellation);

        await queue.ReturnAsync([current], TimeSpan.Zero, Cancellation);
        var still = Assert.Single(await ReceiveAsync(queue, 1));
        Assert.Equal("id-1", still.Id);
        Assert.Equal(3, still.ReceiveCount);
    }

    [Fact]
    public async Task Return_WithADelay_HidesItForTheDelay()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        var message = Assert.Single(await ReceiveAsync(queue, 1));

        var delayed = Stopwatch.StartNew();
        await queue.ReturnAsync([message], TimeSpan.FromSeconds(2), Cancellation);

        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
        var retried = Assert.Single(await ReceiveAsync(queue, 1));
        // Not the full two seconds: SQS rounds delays to seconds and the poll started late.
        Assert.True(delayed.Elapsed >= TimeSpan.FromSeconds(1), $"visible again after {delayed.Elapsed}");
        Assert.Equal("id-1", retried.Id);
        Assert.Equal(2, retried.ReceiveCount);
    }

    [Fact]
    public async Task Return_WithNoDelay_MakesItVisibleAtOnce()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        await queue.EnqueueAsync([new OutgoingMessage("a", "{}"), new OutgoingMessage("b", "{}")], Cancellation);
        var both = await ReceiveAsync(queue, 2);

        await queue.ReturnAsync(both, TimeSpan.Zero, Cancellation);

        Assert.Equal(["a", "b"], (await ReceiveAsync(queue, 2)).Select(m => m.Id).Order());
    }

    [Fact]
    public async Task DeadLettered_IsGone_AndCounted_UntilRedriven()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        const string body = """{"action":"send","recipient":"a@example.com","subject":"Hi","body_text":"é"}""";
        await queue.EnqueueAsync([new OutgoingMessage("id-1", body)], Cancellation);
        var message = Assert.Single(await ReceiveAsync(queue, 1));

        await queue.DeadLetterAsync(message, Note("550 5.1.1 user unknown"), Cancellation);

        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
        Assert.Equal(1, (await CountEventuallyAsync(queue, c => c.Dead == 1)).Dead);
        Assert.Equal(["id-1"], await queue.RedriveAsync(["id-1"], Cancellation));
        var back = Assert.Single(await ReceiveAsync(queue, 1));
        Assert.Equal(body, back.Body);
    }

    [Fact]
    public async Task RedriveAll_MovesEveryDeadLetterBack()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        await DeadLetterAsync(queue, "a", "b");

        var moved = await queue.RedriveAsync(null, Cancellation);

        Assert.Equal(["a", "b"], moved.Order());
        var redriven = await ReceiveAsync(queue, 2);
        Assert.Equal(["a", "b"], redriven.Select(m => m.Id).Order());
        Assert.Empty(await queue.RedriveAsync(null, Cancellation));
    }

    [Fact]
    public async Task RedriveByIds_MovesOnlyThose()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        await DeadLetterAsync(queue, "a", "b", "c");

        var moved = await queue.RedriveAsync(["a", "c"], Cancellation);

        Assert.Equal(["a", "c"], moved.Order());
        var redriven = await ReceiveAsync(queue, 2);
        Assert.Equal(["a", "c"], redriven.Select(m => m.Id).Order());
        Assert.Equal(["b"], await queue.RedriveAsync(null, Cancellation));
    }

    [Fact]
    public async Task RedriveOfUnknownId_MovesNothing()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        await DeadLetterAsync(queue, "a");

        var moved = await queue.RedriveAsync(["no-such-id"], Cancellation);

        Assert.Empty(moved);
        Assert.Equal(["a"], await queue.RedriveAsync(null, Cancellation));
    }

    [Fact]
    public async Task TwoRedrivesAtOnce_MoveEachMessageOnce()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        var ids = Enumerable.Range(0, 20).Select(i => $"d-{i:D2}").ToArray();
        await DeadLetterAsync(queue, ids);

        var both = await Task.WhenAll(
            Task.Run(() => queue.RedriveAsync(null, Cancellation), Cancellation),
            Task.Run(() => queue.RedriveAsync(ids, Cancellation), Cancellation));

        Assert.Equal(ids, both.SelectMany(m => m).Order());
        Assert.Equal(ids, (await ReceiveAsync(queue, ids.Length)).Select(m => m.Id).Order());
        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
    }

    [Fact]
    public async Task Receive_ReturnsNoMoreThanMax()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        await queue.EnqueueAsync([.. Enumerable.Range(0, 5).Select(i => new OutgoingMessage($"id-{i}", "{}"))], Cancellation);

        var first = await queue.ReceiveAsync(3, Cancellation);

        // SQS may return fewer than are visible, never more.
        Assert.InRange(first.Count, 1, 3);
        var rest = await ReceiveAsync(queue, 5 - first.Count);
        Assert.Equal(5, first.Concat(rest).Select(m => m.Id).Distinct().Count());
    }

    [Fact]
    public async Task BatchOf100_IsReceivedExactlyOnce()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        var ids = Enumerable.Range(0, 100).Select(i => $"id-{i:D3}").ToList();
        await queue.EnqueueAsync([.. ids.Select(id => new OutgoingMessage(id, $$"""{"n":"{{id}}"}"""))], Cancellation);

        var received = await ReceiveAsync(queue, 100);
        for (var start = 0; start < received.Count; start += 10)
            await queue.CompleteAsync(received[start..Math.Min(received.Count, start + 10)], Cancellation);

        Assert.Equal(ids, received.Select(m => m.Id).Order());
        Assert.All(received, m => Assert.Equal($$"""{"n":"{{m.Id}}"}""", m.Body));
        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
    }

    protected static DeadLetterNote Note(string reason) => new(reason, FailureClass.Permanent, 1, 550);

    // Counts may lag in an emulator (SQS's are approximate): poll until the condition holds.
    protected static async Task<QueueCounts> CountEventuallyAsync(IMessageQueue queue, Func<QueueCounts, bool> condition)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            var counts = await queue.CountAsync(Cancellation);
            if (condition(counts))
                return counts;
            Assert.True(waited.Elapsed < Patience, $"counts never matched; last {counts}");
            await Task.Delay(PollInterval, Cancellation);
        }
    }

    // Receives, ten at a time, until `count` messages arrived; fails if they don't within Patience.
    // Returns exactly what arrived, so a duplicate shows up in the caller's assertions.
    protected static async Task<List<QueuedMessage>> ReceiveAsync(IMessageQueue queue, int count)
    {
        var received = new List<QueuedMessage>();
        var waited = Stopwatch.StartNew();
        while (received.Count < count)
        {
            received.AddRange(await queue.ReceiveAsync(Math.Min(10, count - received.Count), Cancellation));
            if (received.Count >= count)
                break;
            Assert.True(waited.Elapsed < Patience, $"received {received.Count} of {count} messages in {Patience}");
            await Task.Delay(PollInterval, Cancellation);
        }
        return received;
    }

    // Everything that becomes visible during `window`; for asserting that nothing does.
    protected static async Task<List<QueuedMessage>> ReceiveForAsync(IMessageQueue queue, TimeSpan window)
    {
        var received = new List<QueuedMessage>();
        var waited = Stopwatch.StartNew();
        while (waited.Elapsed < window)
        {
            received.AddRange(await queue.ReceiveAsync(10, Cancellation));
            await Task.Delay(PollInterval, Cancellation);
        }
        return received;
    }

    private static async Task DeadLetterAsync(IMessageQueue queue, params string[] ids)
    {
        await queue.EnqueueAsync([.. ids.Select(id => new OutgoingMessage(id, $$"""{"id":"{{id}}"}"""))], Cancellation);
        foreach (var message in await ReceiveAsync(queue, ids.Length))
            await queue.DeadLetterAsync(message, Note("550 rejected"), Cancellation);
    }
}
