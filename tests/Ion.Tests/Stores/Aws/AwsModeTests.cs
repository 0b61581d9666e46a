using System.Net;
using System.Net.Http.Json;
using Amazon.SQS.Model;
using Ion.Log;
using Ion.Stores.Aws;
using Ion.Tests.Fixtures;
using static Ion.Tests.Suppression.FeedbackSamples;

namespace Ion.Tests.Stores.Aws;

/// <summary>ion with <c>Ion:Store=Aws</c>, end to end: an SNS topic and SQS queues on fauxqs, the delivery log on
/// dynalite, a real SMTP server, each test on resources of its own.</summary>
public sealed class AwsModeTests(AwsEmulators aws) : IClassFixture<AwsEmulators>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string Original(string id, string recipient = "someone@example.com") =>
        $$"""{"action":"send","id":"{{id}}","recipient":"{{recipient}}","subject":"Hello from the topic","body_text":"as the original published it"}""";

    [Fact]
    public async Task TheOriginalsJson_PublishedToTheTopic_IsDelivered_AndLogged()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync();
        await using var ion = await IonServer.StartAsync(sink.Port, aws.Settings(resources));

        // As an application publishes: straight to the topic, no attributes; and one without an id of its own.
        await aws.Sns.PublishAsync(resources.TopicArn, Original("order-17"), new Dictionary<string, string>(), Token);
        await aws.Sns.PublishAsync(resources.TopicArn,
            """{"action":"send","recipient":"other@example.com","subject":"No id","body_text":"x"}""", new Dictionary<string, string>(), Token);

        var status = await ion.WaitForStatusAsync("order-17", r => r.State == MessageState.Sent, Wait);
        Assert.Equal("someone@example.com", Assert.Single(status.Recipients).Address);
        Assert.Equal(250, Assert.Single(status.Attempts).SmtpCode);
        var messages = await sink.WaitForMessagesAsync(2, Wait);
        Assert.Contains(messages, m => m.Subject == "Hello from the topic" && m.To.ToString() == "someone@example.com");
        Assert.Contains(messages, m => m.Subject == "No id");
        await IonServer.WaitUntilAsync(async () => (await aws.PeekAllAsync(resources.QueueUrl)).Count == 0, "the queue is empty");
        Assert.Empty(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Scheduled_IsShownScheduled_AndDeliveredAfterItsTime_NotBefore(bool throughTopic)
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync();
        await using var ion = await IonServer.StartAsync(sink.Port, aws.Settings(resources, throughTopic));
        var sendAt = DateTimeOffset.FromUnixTimeMilliseconds(TimeProvider.System.GetUtcNow().AddSeconds(3).ToUnixTimeMilliseconds());

        await ion.PublishAsync(Scheduled("aws-later", sendAt));

        var scheduled = await ion.StatusAsync("aws-later");
        Assert.Equal((MessageState.Scheduled, sendAt), (scheduled!.State, scheduled.SendAt));
        while (TimeProvider.System.GetUtcNow() < sendAt - TimeSpan.FromMilliseconds(300))
        {
            Assert.Equal(0, sink.Count);
            await Task.Delay(100, Token);
        }
        await sink.WaitForMessagesAsync(1, Wait);
        var sent = await ion.WaitForStatusAsync("aws-later", r => r.State == MessageState.Sent, Wait);
        // Hidden again until its time without an attempt: the one attempt is the send, after send_at.
        Assert.True(Assert.Single(sent.Attempts).At >= sendAt, $"sent at {sent.Attempts[0].At:O}, scheduled for {sendAt:O}");
        Assert.Equal(1, sent.AttemptsUsed);
        Assert.Empty(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));
    }

    [Fact]
    public async Task Cancelled_WhileScheduled_IsRecordedInTheTable_AndItsCopyIsCompletedUnsentWhenItComesUp()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync();
        await using var ion = await IonServer.StartAsync(sink.Port, aws.Settings(resources));
        await ion.PublishAsync(Scheduled("aws-cancel", TimeProvider.System.GetUtcNow().AddSeconds(3)));

        using var cancel = await ion.Client.DeleteAsync("/v1/messages/aws-cancel", Token);

        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        Assert.Equal(MessageState.Cancelled, (await ion.StatusAsync("aws-cancel"))!.State);
        await IonServer.WaitUntilAsync(async () =>
        {
            var attributes = (await aws.Sqs.GetQueueAttributesAsync(resources.QueueUrl, [SqsCalls.Visible, SqsCalls.NotVisible, SqsCalls.Delayed], Token)).Attributes;
            return attributes.Values.All(v => v == "0");
        }, "the cancelled message's copy left the queue", Wait);
        Assert.Equal(0, sink.Count);
        var record = await ion.StatusAsync("aws-cancel");
        Assert.Equal(MessageState.Cancelled, record!.State);
        Assert.Empty(record.Attempts);
        Assert.Empty(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));
        // Published again, it is a duplicate and nothing is sent.
        using var again = await ion.Client.PostAsJsonAsync("/v1/messages", Scheduled("aws-cancel", TimeProvider.System.GetUtcNow()), Token);
        Assert.Contains("\"state\":\"cancelled\"", await again.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);
    }

    private static object Scheduled(string id, DateTimeOffset sendAt) => new
    {
        action = "send", id, recipient = "a@example.com", subject = "scheduled", body_text = "x",
        send_at = sendAt.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture),
    };

    [Fact]
    public async Task PostMessages_InAwsMode_PublishesToTheTopic_WithTheIdAsAnAttribute()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync();
        var observer = await aws.ObserveAsync(resources.TopicArn);
        await using var ion = await IonServer.StartAsync(sink.Port, aws.Settings(resources));

        var id = await ion.PublishAsync(new { action = "send", recipient = "a@example.com", subject = "Via the API", body_text = "x" });

        await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        var seen = Assert.Single(await aws.PeekAllAsync(observer));
        Assert.Equal(id, seen.MessageAttributes["ion-id"].StringValue);
        Assert.Contains("Via the API", seen.Body, StringComparison.Ordinal);
        Assert.Equal("Via the API", Assert.Single(await sink.WaitForMessagesAsync(1, Wait)).Subject);
    }

    [Fact]
    public async Task AMessagePublishedThroughTheTopic_AndSentAtTheFirstAttempt_CostsAtMostTwoDynamoDbWrites()
    {
        // The common path on AWS, counted by dynalite itself: POST (the publish-time record, then SNS) → SQS → ion
        // serve → the suppression lookup → the relay's 250 → the outcome. Reads (the status polls below among them) are
        // not writes.
        const int messages = 20;
        string[] writes = ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"];
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync();
        await using var ion = await IonServer.StartAsync(sink.Port, aws.Settings(resources));
        var before = await aws.DynamoDbRequestsAsync();

        List<string> ids = [];
        for (var i = 0; i < messages; i++)
            ids.Add(await ion.PublishAsync(new { action = "send", recipient = $"r{i}@example.com", subject = "Counted", body_text = "x" }));
        foreach (var id in ids)
            Assert.Single((await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait)).Attempts);
        await sink.WaitForMessagesAsync(messages, Wait);
        await IonServer.WaitUntilAsync(async () => (await aws.PeekAllAsync(resources.QueueUrl)).Count == 0, "the queue is empty");

        var after = await aws.DynamoDbRequestsAsync();
        var counted = writes.ToDictionary(w => w, w => after.GetValueOrDefault(w) - before.GetValueOrDefault(w));
        var perMessage = counted.Values.Sum() / (double)messages;
        var reads = after.GetValueOrDefault("GetItem") - before.GetValueOrDefault("GetItem");
        var lookups = after.GetValueOrDefault("BatchGetItem") - before.GetValueOrDefault("BatchGetItem");
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{perMessage:0.00} writes per message ({string.Join(", ", counted.Select(c => $"{c.Key} {c.Value}"))}); GetItem {reads}, status polls included; BatchGetItem {lookups}");
        Assert.True(perMessage <= 2, $"{perMessage:0.00} DynamoDB writes per message: {string.Join(", ", counted.Select(c => $"{c.Key} {c.Value}"))}");
        // The suppression list costs each message one read call (its recipients' keys in one BatchGetItem) and no write.
        Assert.Equal(messages, lookups);
    }

    [Fact]
    public async Task AMessageOverSnssLimit_IsRefused_WithAnErrorNamingTheLimit_AndNothingIsPublished()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync();
        var observer = await aws.ObserveAsync(resources.TopicArn);
        await using var ion = await IonServer.StartAsync(sink.Port, aws.Settings(resources));
        var large = $$"""{"action":"send","id":"large","recipient":"a@example.com","subject":"Big","body_text":"{{new string('x', 262_144)}}"}""";

        using var response = await ion.Client.PostAsync("/v1/messages", new StringContent(large), Token);
        var cli = await IonCli.RunAsync(ion.DataDirectory, ["publish", "-", .. aws.Settings(resources)], large);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("SNS's limit of 256 KB", await response.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);
        Assert.Equal(2, cli.ExitCode);
        Assert.Contains("SNS's limit of 256 KB", cli.Error, StringComparison.Ordinal);
        Assert.Null(await ion.StatusAsync("large"));
        Assert.Empty(await aws.PeekAllAsync(observer));
    }

    [Fact]
    public async Task A550_IsADeadLetter_AfterOneAttempt_WithItsReasonInTheAttributes_AndARedriveDeliversIt()
    {
        await using var sink = await SmtpSink.StartAsync("-B", "550 5.1.1 No such user", "-f", "RCPT");
        var resources = await aws.ProvisionAsync();
        // The relay refuses with "5.1.1 no such user" and the test redrives: the mailbox counts as fixed, not suppressed.
        await using var ion = await IonServer.StartAsync(sink.Port, [.. aws.Settings(resources), "--Ion:Suppression:Enabled=false"]);

        await aws.Sns.PublishAsync(resources.TopicArn, Original("refused-1", "nobody@example.com"), new Dictionary<string, string>(), Token);
        var dead = await ion.WaitForStatusAsync("refused-1", r => r.State == MessageState.Dead, Wait);

        Assert.Equal(550, Assert.Single(dead.Attempts).SmtpCode);
        Message letter = null!;
        await IonServer.WaitUntilAsync(async () => (await aws.PeekAllAsync(resources.DeadLetterQueueUrl)) is [var only] && (letter = only) is not null,
            "the dead letter is in the dead-letter queue");
        Assert.Equal("refused-1", letter.MessageAttributes["ion-id"].StringValue);
        Assert.Contains("550 5.1.1 No such user", letter.MessageAttributes["ion-reason"].StringValue, StringComparison.Ordinal);
        Assert.Equal("permanent", letter.MessageAttributes["ion-failure-class"].StringValue);
        Assert.Equal("550", letter.MessageAttributes["ion-smtp-code"].StringValue);
        Assert.Equal("1", letter.MessageAttributes["ion-attempts"].StringValue);
        Assert.True(DateTimeOffset.TryParse(letter.MessageAttributes["ion-dead-at"].StringValue, out _));
        Assert.Equal(Original("refused-1", "nobody@example.com"), letter.Body);
        var listed = Assert.Single((await ion.Client.GetFromJsonAsync<List<DeadLetter>>("/v1/dead-letters", IonServer.Json, Token))!);
        Assert.Equal("refused-1", listed.Id);
        Assert.Contains("550 5.1.1 No such user", listed.Reason, StringComparison.Ordinal);
        var cli = await IonCli.RunAsync(ion.DataDirectory, ["dead-letters", "list", .. aws.Settings(resources)]);
        Assert.True(cli.ExitCode == 0, cli.Error);
        Assert.Contains("refused-1", cli.Out, StringComparison.Ordinal);
        Assert.Contains("550 5.1.1 No such user", cli.Out, StringComparison.Ordinal);

        // The recipient exists now; the original's redrive message, published to the topic, brings the letter back.
        await sink.RestartAsync();
        await aws.Sns.PublishAsync(resources.TopicArn, """{"action":"redrive"}""", new Dictionary<string, string>(), Token);

        var sent = await ion.WaitForStatusAsync("refused-1", r => r.State == MessageState.Sent, Wait);
        Assert.Equal(250, sent.Attempts[^1].SmtpCode);
        Assert.Equal("nobody@example.com", Assert.Single(await sink.WaitForMessagesAsync(1, Wait)).To.ToString());
        await IonServer.WaitUntilAsync(async () => (await aws.PeekAllAsync(resources.DeadLetterQueueUrl)).Count == 0, "the dead-letter queue is empty");
    }

    [Fact]
    public async Task A550_5_1_1_SuppressesTheAddressInDynamoDb_AndTheNextMessageGoesToTheOtherRecipientOnly()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(
            ("bob@y.example", 550, "5.1.1 <bob@y.example>: Recipient address rejected: User unknown")));
        var resources = await aws.ProvisionAsync();
        await using var ion = await IonServer.StartAsync(relay.Port, aws.Settings(resources));

        await aws.Sns.PublishAsync(resources.TopicArn, Original("bounced-1", "bob@y.example"), new Dictionary<string, string>(), Token);
        var dead = await ion.WaitForStatusAsync("bounced-1", r => r.State == MessageState.Dead, Wait);
        Assert.Equal(550, Assert.Single(dead.Attempts).SmtpCode);

        // Listed through the API, from the suppression table, with the relay's words and the message that found it.
        var listed = await ion.Client.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/suppressions", Token);
        var bob = Assert.Single(listed.GetProperty("suppressions").EnumerateArray());
        Assert.Equal("bob@y.example", bob.GetProperty("address").GetString());
        Assert.Equal("bounce", bob.GetProperty("reason").GetString());
        Assert.Contains("5.1.1", bob.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("bounced-1", bob.GetProperty("message_id").GetString());

        await aws.Sns.PublishAsync(resources.TopicArn,
            """{"action":"send","id":"second-1","to":["alice@x.example","BOB@y.example"],"subject":"Second","body_text":"x"}""",
            new Dictionary<string, string>(), Token);
        var sent = await ion.WaitForStatusAsync("second-1", r => r.State == MessageState.Sent, Wait);

        Assert.Equal([RecipientState.Sent, RecipientState.Suppressed], sent.Recipients.Select(r => r.State));
        Assert.StartsWith("suppressed (bounce since ", sent.Recipients[1].Reply, StringComparison.Ordinal);
        // The one message the relay took went to alice alone.
        Assert.Equal(["alice@x.example"], Assert.Single(relay.Delivered).Recipients.Select(r => r.Address));
    }

    [Fact]
    public async Task AnSesBounceAndComplaint_PublishedToTheFeedbackTopic_SuppressInDynamoDb_AndTheNextMessageGoesToTheOthersOnly()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        // As ion aws provision --feedback makes them: SES's topic, and the queue subscribed to it with SNS's envelope.
        var resources = await aws.ProvisionAsync(feedback: true);
        await using var ion = await IonServer.StartAsync(relay.Port, aws.Settings(resources));

        // As SES publishes them, to the topic (SNS wraps each in its envelope on the way to the queue).
        await aws.Sns.PublishAsync(resources.FeedbackTopicArn!, SesBounce("Permanent", "General", null,
            ("bob@y.example", "5.1.1", "smtp; 550 5.1.1 <bob@y.example>: Recipient address rejected: User unknown")), new Dictionary<string, string>(), Token);
        await aws.Sns.PublishAsync(resources.FeedbackTopicArn!, SesComplaint("abuse", null, "carol@y.example"), new Dictionary<string, string>(), Token);

        var bob = await WaitForSuppressionAsync(ion, "bob@y.example");
        Assert.Equal("bounce", bob.GetProperty("reason").GetString());
        Assert.Contains("5.1.1", bob.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("complaint", (await WaitForSuppressionAsync(ion, "carol@y.example")).GetProperty("reason").GetString());
        // In the suppression table itself, keyed by the address.
        var item = await aws.DynamoDb.GetItemAsync(resources.SuppressionTable,
            new() { ["address_key"] = new Amazon.DynamoDBv2.Model.AttributeValue { S = "bob@y.example" } }, Token);
        Assert.True(item.IsItemSet, "bob is not in the suppression table");

        await aws.Sns.PublishAsync(resources.TopicArn,
            """{"action":"send","id":"after-feedback-1","to":["alice@x.example","bob@y.example","carol@y.example"],"subject":"After","body_text":"x"}""",
            new Dictionary<string, string>(), Token);
        var sent = await ion.WaitForStatusAsync("after-feedback-1", r => r.State == MessageState.Sent, Wait);

        Assert.Equal([RecipientState.Sent, RecipientState.Suppressed, RecipientState.Suppressed], sent.Recipients.Select(r => r.State));
        Assert.Equal(["alice@x.example"], Assert.Single(relay.Delivered).Recipients.Select(r => r.Address));
        await IonServer.WaitUntilAsync(async () => await MessagesOnAsync(resources.FeedbackQueueUrl!) == 0, "the feedback queue is empty");
    }

    [Fact]
    public async Task AMessageOnTheFeedbackQueue_ThatIsNoSesNotification_IsDeletedAndCounted_AndTheNextOneIsRead()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        var resources = await aws.ProvisionAsync(feedback: true);
        await using var ion = await IonServer.StartAsync(relay.Port, aws.Settings(resources));

        await aws.Sqs.SendMessageAsync(resources.FeedbackQueueUrl, "{\"hello\":", Token);
        await aws.Sns.PublishAsync(resources.FeedbackTopicArn!, "not an SES notification", new Dictionary<string, string>(), Token);
        await aws.Sns.PublishAsync(resources.FeedbackTopicArn!, SesBounce("Permanent", "NoEmail", null, ("dave@y.example", "5.0.0", null)),
            new Dictionary<string, string>(), Token);

        Assert.Equal("bounce", (await WaitForSuppressionAsync(ion, "dave@y.example")).GetProperty("reason").GetString());
        await IonServer.WaitUntilAsync(async () => await MessagesOnAsync(resources.FeedbackQueueUrl!) == 0, "the feedback queue is empty");
        var metrics = await ion.Client.GetStringAsync("/metrics", Token);
        Assert.Contains(metrics.Split('\n'), line => line.StartsWith("ion_feedback_unreadable_total{", StringComparison.Ordinal)
            && line.Contains("source=\"ses\"", StringComparison.Ordinal) && line.EndsWith(" 2", StringComparison.Ordinal));
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

    /// <summary>GET /v1/suppressions/{address} once the address is on the list.</summary>
    private static async Task<System.Text.Json.JsonElement> WaitForSuppressionAsync(IonServer ion, string address)
    {
        System.Text.Json.JsonElement found = default;
        await IonServer.WaitUntilAsync(async () =>
        {
            using var response = await ion.Client.GetAsync($"/v1/suppressions/{address}", Token);
            if (response.StatusCode == HttpStatusCode.NotFound)
                return false;
            response.EnsureSuccessStatusCode();
            found = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(Token);
            return true;
        }, $"{address} is suppressed", Wait);
        return found;
    }

    [Fact]
    public async Task WithoutASuppressionTable_MailStillGoes_AndTheApiAnswers501_NamingTheSetting()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync();
        await using var ion = await IonServer.StartAsync(sink.Port,
            [.. aws.Settings(resources).Where(s => !s.StartsWith("--Ion:Aws:SuppressionTable", StringComparison.Ordinal))]);

        await aws.Sns.PublishAsync(resources.TopicArn, Original("no-list-1"), new Dictionary<string, string>(), Token);
        await ion.WaitForStatusAsync("no-list-1", r => r.State == MessageState.Sent, Wait);
        using var response = await ion.Client.GetAsync("/v1/suppressions", Token);

        Assert.Equal(HttpStatusCode.NotImplemented, response.StatusCode);
        Assert.Contains("Ion:Aws:SuppressionTable", await response.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeadLetters_AreRedrivenByClass_FromTheCli_AndTwoRedrivesAtOnceSendTheMessageOnce()
    {
        await using var sink = await SmtpSink.StartAsync("-B", "550 5.1.1 No such user", "-f", "RCPT");
        var resources = await aws.ProvisionAsync();
        // The relay refuses with "5.1.1 no such user" and the test redrives: the mailbox counts as fixed, not suppressed.
        await using var ion = await IonServer.StartAsync(sink.Port, [.. aws.Settings(resources), "--Ion:Suppression:Enabled=false"]);
        await aws.Sns.PublishAsync(resources.TopicArn, Original("refused-2", "nobody@example.com"), new Dictionary<string, string>(), Token);
        await aws.Sns.PublishAsync(resources.TopicArn, """{"action":"send","id":"invalid-2","subject":"no recipient"}""", new Dictionary<string, string>(), Token);
        await ion.WaitForStatusAsync("refused-2", r => r.State == MessageState.Dead, Wait);
        await ion.WaitForStatusAsync("invalid-2", r => r.State == MessageState.Dead, Wait);
        await sink.RestartAsync();

        string[] redrive = ["dead-letters", "redrive", "--class", "permanent", .. aws.Settings(resources)];
        var both = await Task.WhenAll(IonCli.RunAsync(ion.DataDirectory, redrive), IonCli.RunAsync(ion.DataDirectory, redrive));

        Assert.All(both, r => Assert.True(r.ExitCode == 0, r.Error));
        Assert.Equal(1, both.Sum(r => int.Parse(r.Out.Trim()["redriven: ".Length..], System.Globalization.CultureInfo.InvariantCulture)));
        var sent = await ion.WaitForStatusAsync("refused-2", r => r.State == MessageState.Sent, Wait);
        Assert.Equal(1, sent.AttemptsUsed);
        await Task.Delay(TimeSpan.FromSeconds(2), Token);
        Assert.Equal(1, sink.Count);
        Assert.Equal(MessageState.Dead, (await ion.StatusAsync("invalid-2"))!.State);
        var left = Assert.Single(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));
        Assert.Equal("invalid-2", left.MessageAttributes["ion-id"].StringValue);
        Assert.Equal("invalid", left.MessageAttributes["ion-failure-class"].StringValue);
    }

    [Fact]
    public async Task ARelayOutage_DeadLettersNothing_AndChargesNoAttempt_EvenWithASmallMaxReceiveCount()
    {
        // Two receives and SQS would move a message: a worker that took messages to find the relay down would lose
        // them to the dead-letter queue in seconds.
        var resources = await aws.ProvisionAsync(maxReceiveCount: 2);
        var port = Ports.Free();
        await using var ion = await IonServer.StartAsync(port, [.. aws.Settings(resources), "--Ion:Delivery:VisibilityTimeout=00:00:02"]);
        string[] ids = ["outage-1", "outage-2", "outage-3", "outage-4", "outage-5"];
        foreach (var id in ids)
            await ion.PublishAsync(new { action = "send", id, recipient = "a@example.com", subject = id, body_text = "x" });

        await IonServer.WaitUntilAsync(async () => await ion.RelayStateAsync() == "down", "ion sees the relay down");
        await Task.Delay(TimeSpan.FromSeconds(8), Token);
        await using var sink = await SmtpSink.StartAsync(port);

        foreach (var id in ids)
        {
            var status = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
            Assert.Equal(1, status.AttemptsUsed);
        }
        Assert.Equal(ids.Length, (await sink.WaitForMessagesAsync(ids.Length, Wait)).Count);
        Assert.Empty(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));
    }

    [Fact]
    public async Task AThrottlingRelay_DeadLettersNothing_EvenWithASmallMaxReceiveCount()
    {
        var resources = await aws.ProvisionAsync(maxReceiveCount: 2);
        // Two messages a second, and ion is given 20 at once over 4 connections.
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.Throttle(2));
        await using var ion = await IonServer.StartAsync(relay.Port, [.. aws.Settings(resources), "--Ion:Delivery:Concurrency=4"]);
        var ids = Enumerable.Range(1, 20).Select(i => $"throttled-{i}").ToList();
        foreach (var id in ids)
            await ion.PublishAsync(new { action = "send", id, recipient = "a@example.com", subject = id, body_text = "x" });

        foreach (var id in ids)
            await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, TimeSpan.FromSeconds(60));

        Assert.Equal(ids.Count, relay.Delivered.Count);
        Assert.Empty(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));
    }

    [Fact]
    public async Task Serve_WithAMissingOrWrongAwsSetting_FailsAtStart_NamingIt()
    {
        var resources = await aws.ProvisionAsync();
        var data = Directory.CreateTempSubdirectory("ion-aws-").FullName;
        string[] settings = [.. aws.Settings(resources), "--Ion:Smtp:Host=127.0.0.1", "--Ion:Smtp:Port=2525", "--Ion:Smtp:Security=None"];

        var missing = await IonCli.RunAsync(data, ["serve", "--urls=http://127.0.0.1:0", .. settings.Where(s => !s.StartsWith("--Ion:Aws:TableName", StringComparison.Ordinal))]);
        var wrong = await IonCli.RunAsync(data, ["serve", "--urls=http://127.0.0.1:0", .. settings,
            $"--Ion:Aws:QueueUrl={aws.SqsUrl}/000000000000/no-such-queue", "--Ion:Aws:TopicArn=arn:aws:sns:us-east-1:000000000000:no-such-topic",
            "--Ion:Aws:SuppressionTable=no-such-table"]);
        var store = await IonCli.RunAsync(data, ["serve", "--urls=http://127.0.0.1:0", "--Ion:Store=Dynamo"]);

        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("Ion:Aws:TableName is not set", Assert.Single(missing.Error.Trim().Split('\n')), StringComparison.Ordinal);
        Assert.Equal(2, wrong.ExitCode);
        var line = Assert.Single(wrong.Error.Trim().Split('\n'));
        Assert.Contains("Ion:Aws:QueueUrl: the SQS queue", line, StringComparison.Ordinal);
        Assert.Contains("no-such-queue does not exist", line, StringComparison.Ordinal);
        Assert.Contains("Ion:Aws:TopicArn: the SNS topic arn:aws:sns:us-east-1:000000000000:no-such-topic does not exist", line, StringComparison.Ordinal);
        Assert.Contains("Ion:Aws:SuppressionTable: the DynamoDB table 'no-such-table' does not exist", line, StringComparison.Ordinal);
        Assert.Equal(2, store.ExitCode);
        Assert.Contains("Ion:Store must be Sqlite or Aws (is 'Dynamo')", store.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_WithAFeedbackQueueThatDoesNotExist_FailsAtStart_NamingTheSetting()
    {
        var resources = await aws.ProvisionAsync();
        var data = Directory.CreateTempSubdirectory("ion-aws-").FullName;
        var missing = $"{aws.SqsUrl}/000000000000/no-such-feedback";

        var serve = await IonCli.RunAsync(data, ["serve", "--urls=http://127.0.0.1:0", .. aws.Settings(resources),
            "--Ion:Smtp:Host=127.0.0.1", "--Ion:Smtp:Port=2525", "--Ion:Smtp:Security=None", $"--Ion:Aws:FeedbackQueueUrl={missing}"]);

        Assert.Equal(2, serve.ExitCode);
        var line = Assert.Single(serve.Error.Trim().Split('\n'));
        Assert.Contains($"Ion:Aws:FeedbackQueueUrl: the SQS queue {missing} does not exist", line, StringComparison.Ordinal);
        // The other settings are right, and the line names only the one that is not.
        Assert.DoesNotContain("Ion:Aws:QueueUrl", line, StringComparison.Ordinal);
        Assert.DoesNotContain("Ion:Aws:SuppressionTable", line, StringComparison.Ordinal);
    }
}
