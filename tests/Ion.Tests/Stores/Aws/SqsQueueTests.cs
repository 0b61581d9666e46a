using System.Diagnostics;
using System.Globalization;
using Amazon.Runtime;
using Amazon.SQS;
using Amazon.SQS.Model;
using Ion.Log;
using Ion.Queues;
using Ion.Stores.Aws;
using Ion.Tests.Fixtures;
using Ion.Tests.Queues;
using Microsoft.Extensions.Time.Testing;

namespace Ion.Tests.Stores.Aws;

// The queue contract against fauxqs, a real SQS server on 127.0.0.1, with a fresh queue and dead-letter queue per test.
public sealed class SqsQueueTests(SqsQueueTests.Fauxqs fauxqs) : QueueContract, IClassFixture<SqsQueueTests.Fauxqs>
{
    // One fauxqs per test class: it starts in about a second, and a queue per test keeps the tests apart.
    public sealed class Fauxqs : IAsyncLifetime
    {
        private NodeTool? _server;
        private AmazonSQSClient? _sqs;

        public AmazonSQSClient Sqs => _sqs ?? throw new InvalidOperationException("fauxqs has not started");

        public string Url => _server?.Url ?? throw new InvalidOperationException("fauxqs has not started");

        public async ValueTask InitializeAsync()
        {
            _server = await NodeTool.StartFauxqsAsync();
            _sqs = Client(_server.Url);
        }

        public async ValueTask DisposeAsync()
        {
            _sqs?.Dispose();
            if (_server is not null)
                await _server.DisposeAsync();
        }

        public static AmazonSQSClient Client(string url, int maxErrorRetry = 3) =>
            new(new BasicAWSCredentials("test", "test"), new AmazonSQSConfig
            {
                ServiceURL = url,
                AuthenticationRegion = "us-east-1",
                MaxErrorRetry = maxErrorRetry,
            });
    }

    private AmazonSQSClient Sqs => fauxqs.Sqs;

    // No long polling in the contract: its heartbeat test receives for half of a one-second visibility timeout, and
    // SQS can wait only whole seconds. Long polling has a test of its own below.
    protected override async Task<IMessageQueue> CreateQueueAsync(TimeSpan visibilityTimeout) =>
        (await CreateAsync(new SqsQueueOptions { VisibilityTimeout = visibilityTimeout, ReceiveWaitTime = TimeSpan.Zero })).Queue;

    [Fact]
    public async Task Id_IsTheIonIdAttribute_ElseTheTopLevelIdOfTheBody_ElseTheSqsMessageId()
    {
        var (queue, url, _) = await CreateAsync();
        await Sqs.SendMessageAsync(new SendMessageRequest
        {
            QueueUrl = url,
            MessageBody = """{"id":"from-body"}""",
            MessageAttributes = new() { ["ion-id"] = new MessageAttributeValue { DataType = "String", StringValue = "from-attribute" } },
        }, Cancellation);
        var bodies = new[]
        {
            """{"action":"send","recipient":"a@example.com","id":"client-key"}""",
            """{"nested":{"id":"deep"},"items":[{"id":"in-array"}],"subject":"no id"}""",
            """{"id":42}""",
            """not json {"id":"x"}""",
            """{"subject":"cut""",
        };
        var sqsIds = new Dictionary<string, string>();
        foreach (var body in bodies)
            sqsIds[body] = (await Sqs.SendMessageAsync(url, body, Cancellation)).MessageId;

        var received = (await ReceiveAsync(queue, 1 + bodies.Length)).ToDictionary(m => m.Body);

        Assert.Equal("from-attribute", received["""{"id":"from-body"}"""].Id);
        Assert.Equal("client-key", received[bodies[0]].Id);
        foreach (var body in bodies[1..])
        {
            Assert.Equal(sqsIds[body], received[body].Id);
            Assert.Equal(sqsIds[body], received[body].QueueMessageId);
        }
    }

    [Fact]
    public async Task DeadLetter_CarriesReasonClassCodeAndAttempts_AsAttributesOfTheDeadLetter()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 9, 30, 0, TimeSpan.Zero));
        var (queue, _, deadUrl) = await CreateAsync(time: time);
        const string body = """{"action":"send","recipient":"nobody@example.com","subject":"Hi","body_text":"é"}""";
        await queue.EnqueueAsync([new OutgoingMessage("id-1", body)], Cancellation);
        var message = Assert.Single(await ReceiveAsync(queue, 1));

        await queue.DeadLetterAsync(message, new DeadLetterNote("550 5.1.1 user unknown", FailureClass.Permanent, 3, 550), Cancellation);

        var dead = Assert.Single(await ReceiveRawAsync(deadUrl));
        Assert.Equal(body, dead.Body);
        var attributes = dead.MessageAttributes;
        Assert.Equal("id-1", attributes["ion-id"].StringValue);
        Assert.Equal("550 5.1.1 user unknown", attributes["ion-reason"].StringValue);
        Assert.Equal("permanent", attributes["ion-failure-class"].StringValue);
        Assert.Equal(("Number", "550"), (attributes["ion-smtp-code"].DataType, attributes["ion-smtp-code"].StringValue));
        Assert.Equal(("Number", "3"), (attributes["ion-attempts"].DataType, attributes["ion-attempts"].StringValue));
        Assert.Equal(message.EnqueuedAt, DateTimeOffset.Parse(attributes["ion-enqueued-at"].StringValue, CultureInfo.InvariantCulture));
        Assert.Equal(time.GetUtcNow(), DateTimeOffset.Parse(attributes["ion-dead-at"].StringValue, CultureInfo.InvariantCulture));
        Assert.Equal(new QueueCounts(Ready: 0, Delayed: 0, Dead: 1), await queue.CountAsync(Cancellation));
    }

    [Fact]
    public async Task DeadLetter_ShortensALongReason_MasksWhatSqsRefuses_AndLeavesOutAMissingCode()
    {
        var (queue, _, deadUrl) = await CreateAsync();
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        var message = Assert.Single(await ReceiveAsync(queue, 1));
        var reason = "relay said \u0001 " + new string('x', 5000);

        await queue.DeadLetterAsync(message, new DeadLetterNote(reason, FailureClass.Transient, 8, null), Cancellation);

        var attributes = Assert.Single(await ReceiveRawAsync(deadUrl)).MessageAttributes;
        Assert.StartsWith("relay said ? xxx", attributes["ion-reason"].StringValue, StringComparison.Ordinal);
        Assert.Equal(1000, attributes["ion-reason"].StringValue.Length);
        Assert.Equal("transient", attributes["ion-failure-class"].StringValue);
        Assert.False(attributes.ContainsKey("ion-smtp-code"));
    }

    [Fact]
    public async Task Return_WithADelayOverTwelveHours_DoesNotFail_AndKeepsTheMessageHidden()
    {
        var (queue, _, _) = await CreateAsync(new SqsQueueOptions { VisibilityTimeout = ShortVisibility, ReceiveWaitTime = TimeSpan.Zero });
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        var message = Assert.Single(await ReceiveAsync(queue, 1));

        await queue.ReturnAsync([message], TimeSpan.FromHours(13), Cancellation);

        // Had SQS refused the change, the message would show again after its one-second visibility timeout.
        Assert.Empty(await ReceiveForAsync(queue, ShortVisibility * 2));
        Assert.Equal(1, (await queue.CountAsync(Cancellation)).Delayed);
    }

    [Fact]
    public async Task Count_TellsReadyDelayedAndDead()
    {
        var (queue, _, _) = await CreateAsync();
        await queue.EnqueueAsync([.. Enumerable.Range(0, 6).Select(i => new OutgoingMessage($"id-{i}", "{}"))], Cancellation);
        var received = await ReceiveAsync(queue, 3);
        await queue.ReturnAsync([received[0]], TimeSpan.FromMinutes(1), Cancellation);
        await queue.DeadLetterAsync(received[1], Note("550"), Cancellation);

        Assert.Equal(new QueueCounts(Ready: 3, Delayed: 2, Dead: 1), await CountEventuallyAsync(queue, c => c.Dead == 1));
    }

    [Fact]
    public async Task QueueThatDoesNotExist_GivesStoreUnavailable_NamingTheQueueAndTheOperation()
    {
        var (_, url, deadUrl) = await CreateAsync();
        var missing = url[..(url.LastIndexOf('/') + 1)] + "no-such-queue";
        var queue = new SqsQueue(Sqs, missing, deadUrl, Options(), TimeProvider.System);

        var receive = await Assert.ThrowsAsync<StoreUnavailableException>(() => queue.ReceiveAsync(1, Cancellation));
        var enqueue = await Assert.ThrowsAsync<StoreUnavailableException>(() => queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation));
        var count = await Assert.ThrowsAsync<StoreUnavailableException>(() => queue.CountAsync(Cancellation));

        Assert.Contains("ReceiveMessage on queue " + missing, receive.Message, StringComparison.Ordinal);
        Assert.Contains("SendMessageBatch on queue " + missing, enqueue.Message, StringComparison.Ordinal);
        Assert.Contains(missing, count.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ServiceThatDoesNotAnswer_GivesStoreUnavailable()
    {
        using var nobody = Fauxqs.Client($"http://127.0.0.1:{Ports.Free()}", maxErrorRetry: 0);
        var queue = new SqsQueue(nobody, "http://127.0.0.1/000000000000/ion", "http://127.0.0.1/000000000000/ion-dead", Options(), TimeProvider.System);

        var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => queue.ReceiveAsync(1, Cancellation));

        Assert.Contains("ReceiveMessage on queue http://127.0.0.1/000000000000/ion", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancellation_PassesThrough_AsCancellation()
    {
        // A short wait: a cancelled receive waits for its long poll to end (see the test below).
        var (queue, _, _) = await CreateAsync(new SqsQueueOptions { VisibilityTimeout = LongVisibility, ReceiveWaitTime = TimeSpan.FromSeconds(2) });
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Cancellation);
        cancel.CancelAfter(TimeSpan.FromMilliseconds(200));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queue.ReceiveAsync(10, cancel.Token));
    }

    [Fact]
    public async Task Receive_OnAnEmptyQueue_LongPolls_AndWakesWhenAMessageArrives()
    {
        var (queue, _, _) = await CreateAsync(new SqsQueueOptions { VisibilityTimeout = LongVisibility, ReceiveWaitTime = TimeSpan.FromSeconds(1) });
        var started = Stopwatch.StartNew();
        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
        Assert.True(started.Elapsed >= TimeSpan.FromMilliseconds(900), $"returned after {started.Elapsed}");

        var (waiting, _, _) = await CreateAsync(new SqsQueueOptions { VisibilityTimeout = LongVisibility, ReceiveWaitTime = TimeSpan.FromSeconds(20) });
        started.Restart();
        var receiving = waiting.ReceiveAsync(10, Cancellation);
        await Task.Delay(300, Cancellation);
        await waiting.EnqueueAsync([new OutgoingMessage("late", "{}")], Cancellation);

        Assert.Equal("late", Assert.Single(await receiving).Id);
        Assert.InRange(started.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task AReceiveCancelledWhileItWaits_HandsBackWhatItsLongPollBrings_AtOnce()
    {
        // SQS goes on with a long poll whose client has gone (aws/aws-sdk-net#1680, aws/aws-sdk-go-v2#2068), and so
        // does fauxqs: a message arriving then is handed to nobody and hidden for the whole visibility timeout.
        var (queue, _, _) = await CreateAsync(new SqsQueueOptions { VisibilityTimeout = LongVisibility, ReceiveWaitTime = TimeSpan.FromSeconds(5) });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Cancellation);
        var receiving = queue.ReceiveAsync(10, stop.Token);
        await Task.Delay(300, Cancellation);
        stop.Cancel();
        await queue.EnqueueAsync([new OutgoingMessage("after-stop", "{}")], Cancellation);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => receiving);
        Assert.Equal("after-stop", Assert.Single(await ReceiveAsync(queue, 1)).Id);
    }

    [Fact]
    public async Task ARedriveCancelledWhileItsPollWaits_HandsBackALetterThePollBrings_AtOnce()
    {
        var (queue, _, deadUrl) = await CreateAsync();
        await queue.EnqueueAsync([new OutgoingMessage("late-letter", "{}")], Cancellation);
        var message = Assert.Single(await ReceiveAsync(queue, 1));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Cancellation);
        // The dead-letter queue is empty: the redrive's one-second long poll waits.
        var redriving = queue.RedriveAsync(null, stop.Token);
        await Task.Delay(200, Cancellation);
        stop.Cancel();
        await queue.DeadLetterAsync(message, Note("550"), Cancellation);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => redriving);
        Assert.Equal("late-letter", Assert.Single(await ReceiveRawAsync(deadUrl)).MessageAttributes["ion-id"].StringValue);
    }

    [Fact]
    public async Task ADeadLetterSweepCancelledMidRound_FinishesTheRound_EveryLetterNotedOnce_NoneLeftHidden()
    {
        var (queue, _, deadUrl) = await CreateAsync();
        // Letters SQS moved by itself carry none of ion's attributes.
        foreach (var id in new[] { "moved-1", "moved-2", "moved-3" })
        {
            await Sqs.SendMessageAsync(new SendMessageRequest
            {
                QueueUrl = deadUrl,
                MessageBody = "{}",
                MessageAttributes = new() { ["ion-id"] = new MessageAttributeValue { DataType = "String", StringValue = id } },
            }, Cancellation);
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Cancellation);

        // The stop comes while the sweep decides about the first letter of its round (the Lambda's deadline, a host's stop).
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queue.NoteUnnotedDeadLettersAsync(async _ =>
        {
            await stop.CancelAsync();
            return Note("abandoned");
        }, stop.Token));

        var letters = await ReceiveRawAsync(deadUrl, 3);
        Assert.Equal(["moved-1", "moved-2", "moved-3"], letters.Select(l => l.MessageAttributes["ion-id"].StringValue).Order(StringComparer.Ordinal));
        Assert.All(letters, l => Assert.True(l.MessageAttributes.ContainsKey("ion-dead-at"), "noted"));
        Assert.Empty((await Sqs.ReceiveMessageAsync(new ReceiveMessageRequest { QueueUrl = deadUrl, WaitTimeSeconds = 1 }, Cancellation)).Messages ?? []);
    }

    [Fact]
    public async Task MessagesLargerTogetherThanABatch_AreSentInSeveralBatches()
    {
        var (queue, _, _) = await CreateAsync();
        // Ten of 200 KiB: 2 MiB, more than SQS takes in one batch call.
        var body = $$"""{"body_text":"{{new string('a', 200 * 1024)}}"}""";

        var results = await queue.EnqueueAsync([.. Enumerable.Range(0, 10).Select(i => new OutgoingMessage($"big-{i}", body))], Cancellation);

        Assert.Equal(10, results.Count);
        Assert.Equal(10, (await ReceiveAsync(queue, 10)).Select(m => m.Id).Distinct().Count());
    }

    [Fact]
    public async Task MessageSqsRefuses_IsTriedOnceMore_ThenNamedInStoreUnavailable_AndTheOthersAreQueued()
    {
        var (queue, _, _) = await CreateAsync();

        // SQS refuses bodies with control characters other than tab, CR and LF.
        var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => queue.EnqueueAsync(
            [new OutgoingMessage("good-1", "{}"), new OutgoingMessage("bad", "\u0001"), new OutgoingMessage("good-2", "{}")],
            Cancellation));

        Assert.Contains("refused bad twice", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("good", error.Message, StringComparison.Ordinal);
        Assert.Equal(["good-1", "good-2"], (await ReceiveAsync(queue, 2)).Select(m => m.Id).Order());
    }

    [Fact]
    public async Task MovedToTheDeadLettersBySqsItself_IsRedrivenByItsId()
    {
        var (queue, _, _) = await CreateAsync(maxReceiveCount: 1);
        await queue.EnqueueAsync([new OutgoingMessage("id-1", "{}")], Cancellation);
        await queue.ReturnAsync(await ReceiveAsync(queue, 1), TimeSpan.Zero, Cancellation);

        // The second receive finds it over the redrive policy's limit, and SQS moves it, attributes and all.
        Assert.Empty(await queue.ReceiveAsync(10, Cancellation));
        await CountEventuallyAsync(queue, c => c.Dead == 1);

        Assert.Equal(["id-1"], await queue.RedriveAsync(["id-1"], Cancellation));
        var back = Assert.Single(await ReceiveAsync(queue, 1));
        Assert.Equal("id-1", back.Id);
        Assert.Equal(1, back.ReceiveCount);
    }

    [Fact]
    public async Task Redrive_ReleasesTheLettersItLeaves_AtOnce()
    {
        var (queue, _, deadUrl) = await CreateAsync();
        await queue.EnqueueAsync([.. Enumerable.Range(0, 12).Select(i => new OutgoingMessage($"id-{i:D2}", "{}"))], Cancellation);
        foreach (var message in await ReceiveAsync(queue, 12))
            await queue.DeadLetterAsync(message, Note("550"), Cancellation);

        Assert.Equal(["id-00"], await queue.RedriveAsync(["id-00"], Cancellation));

        Assert.Equal(11, (await ReceiveRawAsync(deadUrl, 11)).Count);
    }

    private async Task<List<Message>> ReceiveRawAsync(string queueUrl, int count = 1)
    {
        var received = new List<Message>();
        var waited = Stopwatch.StartNew();
        while (received.Count < count)
        {
            var response = await Sqs.ReceiveMessageAsync(new ReceiveMessageRequest
            {
                QueueUrl = queueUrl,
                MaxNumberOfMessages = Math.Min(10, count - received.Count),
                MessageAttributeNames = ["All"],
                VisibilityTimeout = 60,
            }, Cancellation);
            received.AddRange(response.Messages ?? []);
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(10), $"received {received.Count} of {count} from {queueUrl}");
        }
        return received;
    }

    [Fact]
    public async Task Scheduled_IsSentWithADelay_AndNotReceivedBeforeItsTime()
    {
        var (queue, _, _) = await CreateAsync();
        var notBefore = TimeProvider.System.GetUtcNow().AddSeconds(3);

        await queue.EnqueueAsync([new OutgoingMessage("later", "{}", NotBefore: notBefore)], Cancellation);

        IReadOnlyList<QueuedMessage> received;
        while ((received = await queue.ReceiveAsync(10, Cancellation)).Count == 0)
            await Task.Delay(100, Cancellation);
        var receivedAt = TimeProvider.System.GetUtcNow();
        Assert.Equal(("later", 1), (Assert.Single(received).Id, received[0].ReceiveCount));
        // SQS counts the delay in whole seconds, rounded up: never before the time.
        Assert.True(receivedAt >= notBefore, $"received at {receivedAt:O}, not before {notBefore:O}");
    }

    [Fact]
    public async Task ALongReturn_OfACopyReceivedOften_GoesBackAsAFreshCopy_ThatKeepsItsIdAndName()
    {
        var (queue, url, _) = await CreateAsync(maxReceiveCount: 10);
        await queue.EnqueueAsync([new OutgoingMessage("often", "{\"n\":1}", Copy: "ion-00000000000000000000000000000001")], Cancellation);
        QueuedMessage often;
        while ((often = Assert.Single(await queue.ReceiveAsync(10, Cancellation))).ReceiveCount < 5)
            await queue.ReturnAsync([often], TimeSpan.Zero, Cancellation);
        await queue.EnqueueAsync([new OutgoingMessage("seldom", "{\"n\":2}")], Cancellation);
        var seldom = Assert.Single(await queue.ReceiveAsync(10, Cancellation));

        await queue.ReturnAsync([often, seldom], TimeSpan.FromHours(1), Cancellation);

        // The often-received copy is a new message, delayed (its count starts again); the other is only hidden.
        var attributes = (await Sqs.GetQueueAttributesAsync(url, [SqsCalls.Visible, SqsCalls.NotVisible, SqsCalls.Delayed], Cancellation)).Attributes;
        Assert.Equal(("0", "1", "1"), (attributes[SqsCalls.Visible], attributes[SqsCalls.NotVisible], attributes[SqsCalls.Delayed]));
        // fauxqs shows its messages without receiving them: the delayed one carries the old copy's id and name.
        using var http = new HttpClient();
        var inspected = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"{fauxqs.Url}/_fauxqs/queues/{url[(url.LastIndexOf('/') + 1)..]}", Cancellation));
        var delayed = Assert.Single(inspected.RootElement.GetProperty("messages").GetProperty("delayed").EnumerateArray()).GetRawText();
        Assert.Contains("ion-00000000000000000000000000000001", delayed, StringComparison.Ordinal);
        Assert.Contains("often", delayed, StringComparison.Ordinal);
        Assert.Contains("\\\"n\\\":1", delayed, StringComparison.Ordinal);
    }

    private static SqsQueueOptions Options() => new() { VisibilityTimeout = LongVisibility, ReceiveWaitTime = TimeSpan.Zero };

    private async Task<(SqsQueue Queue, string Url, string DeadUrl)> CreateAsync(
        SqsQueueOptions? options = null, TimeProvider? time = null, int maxReceiveCount = 10)
    {
        var name = $"ion-{Guid.NewGuid():N}";
        var deadUrl = (await Sqs.CreateQueueAsync(name + "-dead", Cancellation)).QueueUrl;
        var deadArn = (await Sqs.GetQueueAttributesAsync(deadUrl, ["QueueArn"], Cancellation)).QueueARN;
        // Like production: the input queue's redrive policy points at the dead-letter queue.
        var url = (await Sqs.CreateQueueAsync(new CreateQueueRequest
        {
            QueueName = name,
            Attributes = new()
            {
                ["RedrivePolicy"] = $$"""{"deadLetterTargetArn":"{{deadArn}}","maxReceiveCount":"{{maxReceiveCount}}"}""",
            },
        }, Cancellation)).QueueUrl;
        return (new SqsQueue(Sqs, url, deadUrl, options ?? Options(), time ?? TimeProvider.System), url, deadUrl);
    }
}
