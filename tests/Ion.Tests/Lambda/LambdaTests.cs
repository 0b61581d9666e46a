using System.Collections.Concurrent;
using Amazon.SQS.Model;
using Ion.Lambda.Harness;
using Ion.Log;
using Ion.Stores.Aws;
using Ion.Suppression;
using Ion.Tests.Fixtures;
using static Ion.Tests.Suppression.FeedbackSamples;

namespace Ion.Tests.Lambda;

/// <summary>ion's Lambda, the real NativeAOT bootstrap, run by the local harness (the Runtime API and the SQS event
/// source) against the SNS/SQS and DynamoDB emulators and a real SMTP server: topic → SQS → Lambda → SMTP → log.</summary>
public sealed class LambdaTests(AwsEmulators aws) : IClassFixture<AwsEmulators>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>What the function and the harness wrote, this test's only.</summary>
    private readonly ConcurrentQueue<string> _output = new();

    private static string Original(string id, string recipient = "someone@example.com") =>
        $$"""{"action":"send","id":"{{id}}","recipient":"{{recipient}}","subject":"Lambda {{id}}","body_text":"as the original published it"}""";

    private async Task<LambdaHarness> StartAsync(AwsResources resources, int smtpPort, Dictionary<string, string>? settings = null,
        Dictionary<string, string>? parameters = null, TimeSpan? timeout = null, bool mixQueues = false)
    {
        // The function's configuration, as Terraform sets it: environment variables.
        var environment = aws.Settings(resources).Select(a => a[2..].Split('=', 2)).ToDictionary(a => a[0].Replace(":", "__", StringComparison.Ordinal), a => a[1]);
        environment["Ion__Smtp__Host"] = "127.0.0.1";
        environment["Ion__Smtp__Port"] = smtpPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        environment["Ion__Smtp__Security"] = "None";
        foreach (var (name, value) in settings ?? [])
            environment[name] = value;
        return await LambdaHarness.StartAsync(new HarnessOptions
        {
            BootstrapPath = await LambdaBootstrap.PathAsync(),
            SqsServiceUrl = aws.SqsUrl,
            QueueUrl = resources.QueueUrl,
            // The feedback queue's event source mapping, as the Terraform module adds it with the queue.
            MoreQueueUrls = resources.FeedbackQueueUrl is { } feedback ? [feedback] : [],
            MixQueues = mixQueues,
            Region = AwsEmulators.Region,
            Timeout = timeout ?? TimeSpan.FromSeconds(30),
            Environment = environment,
            Parameters = parameters ?? [],
            Output = line =>
            {
                _output.Enqueue(line);
                TestContext.Current.TestOutputHelper?.WriteLine(line);
            },
        }, Token);
    }

    private DynamoDbDeliveryLog Log(AwsResources resources) => new(aws.DynamoDb, resources.TableName, TimeSpan.FromDays(1), TimeProvider.System);

    /// <summary>The log's record once it is in <paramref name="state"/>: the relay's 250 comes a moment before ion
    /// records it.</summary>
    private async Task<DeliveryRecord> RecordAsync(AwsResources resources, string id, MessageState state)
    {
        var log = Log(resources);
        DeliveryRecord? record = null;
        await IonServer.WaitUntilAsync(async () => (record = await log.GetAsync(id, Token))?.State == state, $"{id} {state} in the log", Wait);
        return record!;
    }

    private async Task PublishAsync(AwsResources resources, params string[] bodies)
    {
        foreach (var body in bodies)
            await aws.Sns.PublishAsync(resources.TopicArn, body, new Dictionary<string, string>(), Token);
    }

    [Fact]
    public async Task TheOriginalsJson_PublishedToTheTopic_IsDeliveredByTheLambda_AndTheRecordsAreDeleted()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync();
        await using var lambda = await StartAsync(resources, sink.Port,
            settings: new() { ["Ion__Smtp__PasswordParameter"] = "/ion/smtp-password" },
            parameters: new() { ["/ion/smtp-password"] = "not used by smtp-sink, read at start" });

        var ids = Enumerable.Range(1, 15).Select(i => $"lambda-{i}").ToArray();
        await PublishAsync(resources, [.. ids.Select(id => Original(id))]);

        var messages = await sink.WaitForMessagesAsync(15, Wait);
        Assert.Equal(ids.Select(id => $"Lambda {id}").Order(), messages.Select(m => m.Subject).Order());
        foreach (var id in ids)
            Assert.Equal(250, Assert.Single((await RecordAsync(resources, id, MessageState.Sent)).Attempts).SmtpCode);
        // ion deletes what it completed itself; the event source deletes what the answer did not list, after it.
        await IonServer.WaitUntilAsync(() => Task.FromResult(lambda.Deleted == 15), "the event source deleted every record");
        Assert.Empty(await aws.PeekAllAsync(resources.QueueUrl));
        Assert.Equal(0, lambda.Failures);
        Assert.Equal(1, lambda.Starts);
        Assert.Empty(lambda.InitErrors);
        Assert.Empty(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));
    }

    [Fact]
    public async Task AMessageOverSnssLimit_KeptInS3_IsDeliveredByTheLambda_AndItsPayloadIsDeleted()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync(payloads: true);
        await using var lambda = await StartAsync(resources, sink.Port);

        // 3 MB, offloaded as an extended client (or ion serve's API) does: the payload in S3, the pointer on the topic.
        var attachment = System.Security.Cryptography.RandomNumberGenerator.GetBytes(3 * 1024 * 1024);
        var body = System.Text.Json.JsonSerializer.Serialize(new
        {
            action = "send", id = "lambda-large", recipient = "a@example.com", subject = "Lambda large", body_text = "attached",
            attachments = new[] { new { filename = "report.pdf", content_type = "application/pdf", content_base64 = Convert.ToBase64String(attachment) } },
        });
        await aws.S3.PutObjectAsync(new Amazon.S3.Model.PutObjectRequest { BucketName = resources.PayloadBucket, Key = "large-1", ContentBody = body }, Token);
        await aws.Sns.PublishAsync(resources.TopicArn, S3Payloads.ReferenceTo(resources.PayloadBucket!, "large-1"),
            new Dictionary<string, string> { [S3Payloads.SizeAttribute] = $"{body.Length}" }, Token);

        // Sent first: smtp-sink's dump of a 4 MB message appears as it arrives, and is whole only once the relay said 250.
        Assert.Equal(250, Assert.Single((await RecordAsync(resources, "lambda-large", MessageState.Sent)).Attempts).SmtpCode);
        var message = Assert.Single(await sink.WaitForMessagesAsync(1, Wait));
        Assert.Equal("Lambda large", message.Subject);
        var part = Assert.Single(message.Attachments.OfType<MimeKit.MimePart>());
        using var bytes = new MemoryStream();
        await part.Content!.DecodeToAsync(bytes, Token);
        Assert.Equal(attachment, bytes.ToArray());
        await IonServer.WaitUntilAsync(async () => (await aws.KeysAsync(resources.PayloadBucket!)).Count == 0, "the payload is deleted");
        Assert.Empty(lambda.InitErrors);
    }

    [Fact]
    public async Task WithAnEventsTopic_TheLambdaPublishesTheSameEvents_OneMachineWouldSend()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(("bob@y.example", 550, "5.1.1 User unknown")));
        var resources = await aws.ProvisionAsync(events: true);
        var subscriber = await aws.ObserveAsync(resources.EventsTopicArn!);
        await using var lambda = await StartAsync(resources, relay.Port);

        await PublishAsync(resources, """{"action":"send","id":"evented","to":["alice@x.example","bob@y.example"],"subject":"s","body_text":"x","tags":["t1"]}""");
        await RecordAsync(resources, "evented", MessageState.Dead);

        List<Amazon.SQS.Model.Message> published = [];
        await IonServer.WaitUntilAsync(async () => (published = await aws.PeekAllAsync(subscriber)).Count >= 3, "the outcome's events on the topic", Wait);
        var events = published.Select(m => System.Text.Json.JsonDocument.Parse(m.Body).RootElement).ToList();
        // Published straight to the topic, the message was never accepted by ion's API: its events start with the outcome.
        Assert.Equal(["dead", "failed", "sent"], events.Select(e => e.GetProperty("type").GetString()).Order());
        Assert.All(events, e => Assert.Equal("evented", e.GetProperty("message_id").GetString()));
        Assert.All(events, e => Assert.Equal(["t1"], e.GetProperty("tags").EnumerateArray().Select(t => t.GetString())));
        Assert.All(published, m => Assert.Equal(System.Text.Json.JsonDocument.Parse(m.Body).RootElement.GetProperty("type").GetString(), m.MessageAttributes["type"].StringValue));
    }

    [Fact]
    public async Task A550_EndsInTheDeadLetterQueue_AfterOneAttempt_WithItsReason_AndInTheLog_AndSuppressesTheAddress()
    {
        await using var sink = await SmtpSink.StartAsync("-B", "550 5.1.1 No such user", "-f", "RCPT");
        var resources = await aws.ProvisionAsync();
        await using var lambda = await StartAsync(resources, sink.Port);

        await PublishAsync(resources, Original("refused"));

        await IonServer.WaitUntilAsync(async () => (await aws.PeekAllAsync(resources.DeadLetterQueueUrl)).Count == 1, "a dead letter", Wait);
        var letter = Assert.Single(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));
        Assert.Contains("550 5.1.1 No such user", letter.MessageAttributes["ion-reason"].StringValue, StringComparison.Ordinal);
        Assert.Equal("permanent", letter.MessageAttributes["ion-failure-class"].StringValue);
        Assert.Equal("1", letter.MessageAttributes["ion-attempts"].StringValue);
        var record = await RecordAsync(resources, "refused", MessageState.Dead);
        Assert.Equal(1, record.AttemptsUsed);
        Assert.Empty(await aws.PeekAllAsync(resources.QueueUrl));

        // The Lambda put the address on the suppression list, and keeps the next message to it from the relay.
        var list = new DynamoDbSuppressionList(aws.DynamoDb, resources.SuppressionTable);
        var entry = (await list.FindAsync(["someone@example.com"], TimeProvider.System.GetUtcNow(), Token))["someone@example.com"];
        Assert.Equal(("refused", Ion.Suppression.SuppressionReason.Bounce), (entry.MessageId, entry.Reason));
        await PublishAsync(resources, Original("refused-again"));
        var suppressed = await RecordAsync(resources, "refused-again", MessageState.Suppressed);
        Assert.Equal(0, suppressed.AttemptsUsed);
        Assert.Single(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));
    }

    [Fact]
    public async Task A4xx_ComesBackLater_AsAFailedRecord_AndIsDeliveredOnTheNextAttempt()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipientTimes("later@example.com", 1, 451, "4.3.0 Try again later"));
        var resources = await aws.ProvisionAsync();
        await using var lambda = await StartAsync(resources, relay.Port, settings: new()
        {
            ["Ion__Delivery__RetryBaseDelay"] = "00:00:02",
            ["Ion__Delivery__RetryMaxDelay"] = "00:00:02",
        });

        await PublishAsync(resources, Original("later", "later@example.com"));

        await relay.WaitForDeliveredAsync(1, Wait);
        var record = await RecordAsync(resources, "later", MessageState.Sent);
        Assert.Equal([451, 250], record.Attempts.Select(a => a.SmtpCode));
        // The first invocation listed it in batchItemFailures (so it was not deleted), the second did not.
        Assert.True(lambda.Invocations >= 2, $"{lambda.Invocations} invocation(s)");
        await IonServer.WaitUntilAsync(() => Task.FromResult(lambda.Deleted == 1), "the record deleted once sent, not before");
        Assert.Empty(await aws.PeekAllAsync(resources.QueueUrl));
    }

    [Fact]
    public async Task ABootstrapKilledMidBatch_LosesNothing_TheRestComesBackAfterTheVisibilityTimeout()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.Slow(ScriptedStage.EndOfData, TimeSpan.FromMilliseconds(500)));
        var resources = await aws.ProvisionAsync(visibilityTimeout: TimeSpan.FromSeconds(5));
        await using var lambda = await StartAsync(resources, relay.Port);
        var ids = Enumerable.Range(1, 8).Select(i => $"crash-{i}").ToArray();
        await PublishAsync(resources, [.. ids.Select(id => Original(id))]);

        await relay.WaitForDeliveredAsync(2, Wait);
        lambda.Process!.Kill();

        await IonServer.WaitUntilAsync(async () =>
        {
            var log = Log(resources);
            foreach (var id in ids)
            {
                if ((await log.GetAsync(id, Token))?.State != MessageState.Sent)
                    return false;
            }
            return true;
        }, "every message sent after the crash", Wait);
        var subjects = relay.Delivered.Select(t => t.ParseMessage().Subject).ToList();
        Assert.Equal(ids.Select(id => $"Lambda {id}").Order(), subjects.Distinct().Order());
        // Only the message on the wire when the instance died may go twice.
        Assert.True(subjects.Count - ids.Length <= 1, $"{subjects.Count - ids.Length} duplicate(s)");
        Assert.Equal(2, lambda.Starts);
        await IonServer.WaitUntilAsync(async () => (await aws.PeekAllAsync(resources.QueueUrl)).Count == 0, "the queue is empty");
    }

    [Fact]
    public async Task AMessageThatKillsTheFunctionEveryTime_EndsInTheDeadLetterQueue_AndTheLambdaNotesItAsAbandoned()
    {
        LambdaHarness? lambda = null;
        await using var relay = await ScriptedSmtpServer.StartAsync(c =>
        {
            if (c.Stage == ScriptedStage.RcptTo && c.Argument.Contains("doomed@", StringComparison.Ordinal))
                lambda?.Process?.Kill();
            return null;
        });
        var resources = await aws.ProvisionAsync(maxReceiveCount: 2, visibilityTimeout: TimeSpan.FromSeconds(2));
        lambda = await StartAsync(resources, relay.Port, settings: new() { ["Ion__Aws__DeadLetterSweepInterval"] = "00:00:01" });
        await using var running = lambda;

        await PublishAsync(resources, Original("doomed", "doomed@example.com"));

        // SQS moves it after its second receive; any later invocation then sweeps the dead-letter queue.
        var log = Log(resources);
        var deadline = Environment.TickCount64 + (long)Wait.TotalMilliseconds;
        var trigger = 0;
        while ((await log.GetAsync("doomed", Token))?.State != MessageState.Dead)
        {
            Assert.True(Environment.TickCount64 < deadline, "the letter SQS moved was not noted within a minute");
            await PublishAsync(resources, Original($"trigger-{++trigger}"));
            await Task.Delay(TimeSpan.FromSeconds(1), Token);
        }
        var record = await log.GetAsync("doomed", Token);
        Assert.Equal(FailureClass.Abandoned, record!.FailureClass);
        // The sweep puts a noted copy back; with no more invocations no sweep holds it hidden (a scan hides each letter
        // while it reads them).
        List<Amazon.SQS.Model.Message> letters = [];
        await IonServer.WaitUntilAsync(async () => (letters = await aws.PeekAllAsync(resources.DeadLetterQueueUrl))
            .Any(l => l.MessageAttributes.ContainsKey("ion-failure-class")), "the noted letter in the dead-letter queue", Wait);
        var letter = Assert.Single(letters);
        Assert.Equal("abandoned", letter.MessageAttributes["ion-failure-class"].StringValue);
        Assert.True(lambda.Starts >= 3, $"{lambda.Starts} start(s)");
        Assert.DoesNotContain(relay.Delivered, t => t.AcceptedRecipients.Contains("doomed@example.com"));
    }

    [Fact]
    public async Task WhileTheRelayIsDown_RecordsComeBackAfterRelayDownDelay_WithNoAttemptCharged_ThenAreDelivered()
    {
        var port = Ports.Free();
        var resources = await aws.ProvisionAsync(maxReceiveCount: 50);
        await using var lambda = await StartAsync(resources, port, settings: new()
        {
            ["Ion__Lambda__RelayDownDelay"] = "00:00:02",
            ["Ion__Delivery__RelayProbeMaxDelay"] = "00:00:02",
            ["Ion__Smtp__ConnectTimeout"] = "00:00:02",
        });

        await PublishAsync(resources, Original("waits-1"), Original("waits-2"));
        // Each record is handed back for RelayDownDelay each time: a few receives over seconds, not a tight loop.
        await Task.Delay(TimeSpan.FromSeconds(7), Token);
        var log = Log(resources);
        foreach (var id in new[] { "waits-1", "waits-2" })
        {
            var record = await log.GetAsync(id, Token);
            Assert.NotEqual(MessageState.Sent, record?.State);
            Assert.Equal(0, record?.AttemptsUsed ?? 0);
        }
        Assert.InRange(lambda.Invocations, 2, 8);
        Assert.Empty(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));

        await using var sink = await SmtpSink.StartAsync(port);
        // Back within RelayDownDelay and a probe: seconds, not the minute the assertion allows.
        await sink.WaitForMessagesAsync(2, TimeSpan.FromSeconds(20));
        foreach (var id in new[] { "waits-1", "waits-2" })
            Assert.Equal(1, (await RecordAsync(resources, id, MessageState.Sent)).AttemptsUsed);
    }

    [Fact]
    public async Task WhileThePrimaryIsDown_TheLambdaDeliversThroughTheFallback_AtOnce_WithNoAttemptCharged()
    {
        await using var fallback = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync(maxReceiveCount: 50);
        await using var lambda = await StartAsync(resources, Ports.Free(), settings: new()
        {
            // Longer than the test waits: a record handed back for the primary's outage must not wait for it while the
            // fallback is up.
            ["Ion__Lambda__RelayDownDelay"] = "00:05:00",
            ["Ion__Smtp__ConnectTimeout"] = "00:00:02",
            ["Ion__Smtp__Fallback__Host"] = "127.0.0.1",
            ["Ion__Smtp__Fallback__Port"] = fallback.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Ion__Smtp__Fallback__Security"] = "None",
        });

        await PublishAsync(resources, Original("carried-1"), Original("carried-2"));
        await fallback.WaitForMessagesAsync(2, TimeSpan.FromSeconds(30));
        foreach (var id in new[] { "carried-1", "carried-2" })
        {
            var record = await RecordAsync(resources, id, MessageState.Sent);
            Assert.Equal(1, record.AttemptsUsed);
            Assert.Equal("fallback", Assert.Single(record.Attempts).Relay);
        }
        Assert.Equal(2, fallback.Count);
        Assert.Empty(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));
    }

    [Fact]
    public async Task AWarmInstance_ReusesItsSmtpConnection_AcrossInvocations()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        var resources = await aws.ProvisionAsync();
        await using var lambda = await StartAsync(resources, relay.Port);

        for (var i = 1; i <= 3; i++)
        {
            await PublishAsync(resources, Original($"warm-{i}"));
            await relay.WaitForDeliveredAsync(i, Wait);
        }

        Assert.True(lambda.Invocations >= 3, $"{lambda.Invocations} invocation(s)");
        Assert.Equal(1, relay.Count(ScriptedStage.Connect));
    }

    [Fact]
    public async Task CloseToTheDeadline_TheRestOfTheBatchGoesBackAtOnce_AndTheConnectionIsClosed_NoInvocationTimesOut()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.Slow(ScriptedStage.EndOfData, TimeSpan.FromSeconds(1)));
        var resources = await aws.ProvisionAsync();
        // 13 s to answer, and no message started in the last 10 (DeadlineMargin): about three messages per invocation.
        await using var lambda = await StartAsync(resources, relay.Port, timeout: TimeSpan.FromSeconds(13));
        var ids = Enumerable.Range(1, 8).Select(i => $"deadline-{i}").ToArray();
        await PublishAsync(resources, [.. ids.Select(id => Original(id))]);

        await relay.WaitForDeliveredAsync(8, Wait);
        Assert.Equal(8, relay.Delivered.Select(t => t.ParseMessage().Subject).Distinct().Count());
        Assert.Equal(0, lambda.Failures);
        Assert.True(lambda.Invocations >= 3, $"{lambda.Invocations} invocation(s)");
        Assert.True(relay.Count(ScriptedStage.Quit) >= 1, "the connection was not closed before a deadline");
    }

    [Fact]
    public async Task AMissingSsmParameter_IsAnInitError_NamingTheSetting()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync();
        await using var lambda = await StartAsync(resources, sink.Port,
            settings: new() { ["Ion__Smtp__PasswordParameter"] = "/ion/missing" },
            parameters: new() { ["/ion/other"] = "x" });

        await IonServer.WaitUntilAsync(() => Task.FromResult(lambda.InitErrors.Count > 0), "an init error", Wait);
        Assert.Contains("Ion:Smtp:PasswordParameter", lambda.InitErrors[0], StringComparison.Ordinal);
        Assert.Contains("/ion/missing", lambda.InitErrors[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheFallbacksPassword_IsReadFromItsOwnSsmParameter_AMissingOneIsAnInitError_NamingTheSetting()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync();
        await using var lambda = await StartAsync(resources, sink.Port,
            settings: new()
            {
                ["Ion__Smtp__Fallback__Host"] = "127.0.0.1",
                ["Ion__Smtp__Fallback__Port"] = Ports.Free().ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Ion__Smtp__Fallback__Security"] = "None",
                ["Ion__Smtp__Fallback__Username"] = "ion",
                ["Ion__Smtp__Fallback__PasswordParameter"] = "/ion/fallback-missing",
            },
            parameters: new() { ["/ion/other"] = "x" });

        await IonServer.WaitUntilAsync(() => Task.FromResult(lambda.InitErrors.Count > 0), "an init error", Wait);
        Assert.Contains("Ion:Smtp:Fallback:PasswordParameter", lambda.InitErrors[0], StringComparison.Ordinal);
        Assert.Contains("/ion/fallback-missing", lambda.InitErrors[0], StringComparison.Ordinal);
    }

    // --- SES's feedback queue: a second event source mapping ---------------------------------------------------------

    private DynamoDbSuppressionList SuppressionList(AwsResources resources) => new(aws.DynamoDb, resources.SuppressionTable);

    private async Task<SuppressedAddress> SuppressedAsync(AwsResources resources, string address)
    {
        SuppressedAddress? entry = null;
        await IonServer.WaitUntilAsync(async () =>
            (await SuppressionList(resources).FindAsync([address], TimeProvider.System.GetUtcNow(), Token)).TryGetValue(address, out entry),
            $"{address} on the suppression list", Wait);
        return entry!;
    }

    /// <summary>Every message on the queue, those received and hidden included: only a deleted one is not counted.</summary>
    private async Task<int> MessagesOnAsync(string queueUrl)
    {
        var attributes = await aws.Sqs.GetQueueAttributesAsync(new GetQueueAttributesRequest
        {
            QueueUrl = queueUrl,
            AttributeNames = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        }, Token);
        return attributes.ApproximateNumberOfMessages + attributes.ApproximateNumberOfMessagesNotVisible;
    }

    [Fact]
    public async Task AnSesBounceAndComplaint_OnTheFeedbackQueue_PutTheAddressesOnTheList_AndTheRecordsAreSettled_WithoutTheRelay()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        var resources = await aws.ProvisionAsync(feedback: true);
        await using var lambda = await StartAsync(resources, relay.Port);

        // As SES publishes them, to its topic: SNS wraps each in its envelope on the way to the queue.
        await aws.Sns.PublishAsync(resources.FeedbackTopicArn!, SesBounce("Permanent", "General", "ion.0123456789abcdef0123456789abcdef@test.example",
            ("bob@y.example", "5.1.1", "smtp; 550 5.1.1 <bob@y.example>: Recipient address rejected: User unknown")), new Dictionary<string, string>(), Token);
        await aws.Sns.PublishAsync(resources.FeedbackTopicArn!, SesComplaint("abuse", null, "carol@y.example"), new Dictionary<string, string>(), Token);

        var bob = await SuppressedAsync(resources, "bob@y.example");
        Assert.Equal(SuppressionReason.Bounce, bob.Reason);
        Assert.Equal("ion.0123456789abcdef0123456789abcdef@test.example", bob.MessageId);
        Assert.Contains("5.1.1", bob.Detail, StringComparison.Ordinal);
        Assert.Equal(SuppressionReason.Complaint, (await SuppressedAsync(resources, "carol@y.example")).Reason);
        await IonServer.WaitUntilAsync(() => Task.FromResult(lambda.Deleted == 2), "the event source deleted both records", Wait);
        Assert.Equal(0, await MessagesOnAsync(resources.FeedbackQueueUrl!));
        Assert.Equal(0, lambda.Failures);
        // Not mail: nothing went to the relay, the dead letters or the delivery log's queue.
        Assert.Equal(0, relay.Count(ScriptedStage.Connect));
        Assert.Empty(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));

        // ion's messages still come through the other mapping, and the list keeps bob from the relay.
        await PublishAsync(resources, """{"action":"send","id":"after-bounce","to":["alice@x.example","bob@y.example"],"subject":"After","body_text":"x"}""");
        var sent = await RecordAsync(resources, "after-bounce", MessageState.Sent);
        Assert.Equal([RecipientState.Sent, RecipientState.Suppressed], sent.Recipients.Select(r => r.State));
        Assert.Equal(["alice@x.example"], Assert.Single(relay.Delivered).Recipients.Select(r => r.Address));
    }

    [Fact]
    public async Task AnUnreadableRecord_OnTheFeedbackQueue_IsLoggedAndSettled_NotReturnedAgainAndAgain()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync(feedback: true);
        // Were it returned, it would come back within a second.
        await aws.Sqs.SetQueueAttributesAsync(resources.FeedbackQueueUrl, new Dictionary<string, string> { ["VisibilityTimeout"] = "1" }, Token);
        await using var lambda = await StartAsync(resources, sink.Port);

        var sent = await aws.Sqs.SendMessageAsync(resources.FeedbackQueueUrl, "{\"hello\":", Token);

        await IonServer.WaitUntilAsync(() => Task.FromResult(lambda.Deleted == 1), "the event source deleted the record", Wait);
        var line = Assert.Single(_output, l => l.Contains(sent.MessageId, StringComparison.Ordinal));
        Assert.Contains($"A ses report could not be read and was refused: SQS message {sent.MessageId} on {resources.FeedbackQueueUrl}, deleted: not JSON", line, StringComparison.Ordinal);
        var invocations = lambda.Invocations;
        await Task.Delay(TimeSpan.FromSeconds(3), Token);
        Assert.Equal(invocations, lambda.Invocations);
        Assert.Equal(0, await MessagesOnAsync(resources.FeedbackQueueUrl!));
        Assert.Equal(0, lambda.Failures);
        Assert.Empty(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));
    }

    [Fact]
    public async Task ARecordWhoseListWriteFails_ComesBack_AndIsTakenOnceTheListCanBeWritten()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync(feedback: true);
        await aws.Sqs.SetQueueAttributesAsync(resources.FeedbackQueueUrl, new Dictionary<string, string> { ["VisibilityTimeout"] = "1" }, Token);
        // A list whose table is not there yet: every write to it fails, as one that does not answer does.
        var later = resources with { SuppressionTable = $"{resources.SuppressionTable}-later" };
        await using var lambda = await StartAsync(later, sink.Port);

        await aws.Sns.PublishAsync(resources.FeedbackTopicArn!, SesBounce("Permanent", "NoEmail", null, ("dave@y.example", "5.0.0", null)),
            new Dictionary<string, string>(), Token);

        // Listed in batchItemFailures: not deleted, and back for the next invocations.
        await IonServer.WaitUntilAsync(() => Task.FromResult(_output.Count(l => l.Contains("Could not take record", StringComparison.Ordinal)) >= 2),
            "the record failed twice", Wait);
        Assert.Equal(0, lambda.Deleted);
        Assert.Equal(0, lambda.Failures);
        Assert.Equal(1, await MessagesOnAsync(resources.FeedbackQueueUrl!));

        await DynamoDbSuppressionList.CreateTableAsync(aws.DynamoDb, later.SuppressionTable, Token);
        Assert.Equal(SuppressionReason.Bounce, (await SuppressedAsync(later, "dave@y.example")).Reason);
        await IonServer.WaitUntilAsync(() => Task.FromResult(lambda.Deleted == 1), "the event source deleted the record once taken", Wait);
        Assert.Equal(0, await MessagesOnAsync(resources.FeedbackQueueUrl!));
    }

    [Fact]
    public async Task ABatchMixingBothQueues_HasEachRecordHandledAsItsOwnQueues()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync(feedback: true);
        // Both waiting before the harness polls, so that its one batch holds both.
        await PublishAsync(resources, Original("mixed-1"));
        await aws.Sns.PublishAsync(resources.FeedbackTopicArn!, SesBounce("Permanent", "General", null, ("erin@y.example", "5.1.1", null)),
            new Dictionary<string, string>(), Token);
        await using var lambda = await StartAsync(resources, sink.Port, mixQueues: true);

        Assert.Equal("Lambda mixed-1", Assert.Single(await sink.WaitForMessagesAsync(1, Wait)).Subject);
        Assert.Equal(1, (await RecordAsync(resources, "mixed-1", MessageState.Sent)).AttemptsUsed);
        Assert.Equal(SuppressionReason.Bounce, (await SuppressedAsync(resources, "erin@y.example")).Reason);
        await IonServer.WaitUntilAsync(() => Task.FromResult(lambda.Deleted == 2), "the event source deleted both records", Wait);
        Assert.Equal(1, lambda.Invocations);
        Assert.Equal(0, await MessagesOnAsync(resources.QueueUrl));
        Assert.Equal(0, await MessagesOnAsync(resources.FeedbackQueueUrl!));
        // Neither taken for the other: the notification is no invalid message, the message no unreadable notification.
        Assert.Empty(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));
        Assert.DoesNotContain(_output, l => l.Contains("could not be read", StringComparison.Ordinal));
    }
}
