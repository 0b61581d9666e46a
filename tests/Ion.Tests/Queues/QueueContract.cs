using System.Diagnostics;
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

        await queue.EnqueueAsync([new OutgoingMessage("id-1", body)], Cancellation);
        var message = Assert.Single(await ReceiveAsync(queue, 1));

        Assert.Equal("id-1", message.Id);
        Assert.Equal(body, message.Body);
        Assert.Equal(0, message.Attempts);
        Assert.Equal(1, message.ReceiveCount);
        Assert.False(string.IsNullOrEmpty(message.ReceiptHandle));
        // A minute either way allows for an emulator whose clock is not quite ours.
        Assert.InRange(message.EnqueuedAt, before.AddMinutes(-1), TimeProvider.System.GetUtcNow().AddMinutes(1));
        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
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
    public async Task NeverCompleted_IsVisibleAgainAfterTheVisibilityTimeout_WithReceiveCountTwo()
    {
        var queue = await CreateQueueAsync(ShortVisibility);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        var first = Assert.Single(await ReceiveAsync(queue, 1));

        // The worker that received it "crashed": nothing completes, retries or releases it.
        var again = Assert.Single(await ReceiveAsync(queue, 1));

        Assert.Equal("id-1", again.Id);
        Assert.Equal(2, again.ReceiveCount);
        Assert.Equal(0, again.Attempts);
        Assert.NotEqual(first.ReceiptHandle, again.ReceiptHandle);
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

        await queue.ReleaseAsync(current, TimeSpan.Zero, Cancellation);
        var still = Assert.Single(await ReceiveAsync(queue, 1));
        Assert.Equal("id-1", still.Id);
        Assert.Equal(3, still.ReceiveCount);
    }

    [Fact]
    public async Task RetryLater_CountsAnAttempt_AndDelays()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        var message = Assert.Single(await ReceiveAsync(queue, 1));

        var delayed = Stopwatch.StartNew();
        await queue.RetryLaterAsync(message, TimeSpan.FromSeconds(2), Cancellation);

        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
        var retried = Assert.Single(await ReceiveAsync(queue, 1));
        // Not the full two seconds: SQS rounds delays to seconds and the poll started late.
        Assert.True(delayed.Elapsed >= TimeSpan.FromSeconds(1), $"visible again after {delayed.Elapsed}");
        Assert.Equal("id-1", retried.Id);
        Assert.Equal(1, retried.Attempts);
    }

    [Fact]
    public async Task Release_DoesNotCountAnAttempt()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        var message = Assert.Single(await ReceiveAsync(queue, 1));

        await queue.ReleaseAsync(message, TimeSpan.Zero, Cancellation);

        var released = Assert.Single(await ReceiveAsync(queue, 1));
        Assert.Equal("id-1", released.Id);
        Assert.Equal(0, released.Attempts);
    }

    [Fact]
    public async Task DeadLetter_KeepsBodyReasonAndAttempts()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        const string body = """{"action":"send","recipient":"a@example.com","subject":"Hi","body_text":"é"}""";
        await queue.EnqueueAsync([new OutgoingMessage("id-1", body)], Cancellation);
        var first = Assert.Single(await ReceiveAsync(queue, 1));
        await queue.RetryLaterAsync(first, TimeSpan.Zero, Cancellation);
        var second = Assert.Single(await ReceiveAsync(queue, 1));

        await queue.DeadLetterAsync(second, "550 5.1.1 user unknown", Cancellation);

        var dead = Assert.Single(await queue.ListDeadLettersAsync(10, Cancellation));
        Assert.Equal("id-1", dead.Id);
        Assert.Equal(body, dead.Body);
        Assert.Equal("550 5.1.1 user unknown", dead.Reason);
        Assert.Equal(2, dead.Attempts);
        Assert.True(dead.DeadAt >= dead.EnqueuedAt);
        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
    }

    [Fact]
    public async Task RedriveAll_MovesEveryDeadLetterBack_WithFreshAttempts()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        await DeadLetterAsync(queue, "a", "b");

        var moved = await queue.RedriveAsync(null, Cancellation);

        Assert.Equal(["a", "b"], moved.Order());
        Assert.Empty(await queue.ListDeadLettersAsync(10, Cancellation));
        var redriven = await ReceiveAsync(queue, 2);
        Assert.Equal(["a", "b"], redriven.Select(m => m.Id).Order());
        Assert.All(redriven, m => Assert.Equal(0, m.Attempts));
    }

    [Fact]
    public async Task RedriveByIds_MovesOnlyThose()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        await DeadLetterAsync(queue, "a", "b", "c");

        var moved = await queue.RedriveAsync(["a", "c"], Cancellation);

        Assert.Equal(["a", "c"], moved.Order());
        Assert.Equal("b", Assert.Single(await queue.ListDeadLettersAsync(10, Cancellation)).Id);
        var redriven = await ReceiveAsync(queue, 2);
        Assert.Equal(["a", "c"], redriven.Select(m => m.Id).Order());
    }

    [Fact]
    public async Task RedriveOfUnknownId_MovesNothing()
    {
        var queue = await CreateQueueAsync(LongVisibility);
        await DeadLetterAsync(queue, "a");

        var moved = await queue.RedriveAsync(["no-such-id"], Cancellation);

        Assert.Empty(moved);
        Assert.Equal("a", Assert.Single(await queue.ListDeadLettersAsync(10, Cancellation)).Id);
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
        foreach (var message in received)
            await queue.CompleteAsync([message], Cancellation);

        Assert.Equal(ids, received.Select(m => m.Id).Order());
        Assert.All(received, m => Assert.Equal($$"""{"n":"{{m.Id}}"}""", m.Body));
        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
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
            await queue.DeadLetterAsync(message, "550 rejected", Cancellation);
    }
}
