using System.Net.Http.Json;
using System.Text.Json;
using Ion.Log;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Events;

/// <summary>Delivery events to a real, signature-checking webhook receiver (Kestrel on loopback), from a real ion
/// delivering to a scripted SMTP server (issue 15, item 1).</summary>
public class WebhookTests(ITestOutputHelper output)
{
    internal const string Secret = "webhook-secret-0123456789";
    internal static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    internal static string[] Webhook(WebhookReceiver receiver, params string[] more) =>
        [$"--Ion:Events:Webhooks:app:Url={receiver.Url}", $"--Ion:Events:Webhooks:app:Secret={Secret}", .. more];

    [Fact]
    public async Task A550_5_1_1_GivesSentFailedAndDead_ThenTheNextMessageGivesSuppressed_EachSignedAndInOrder()
    {
        await using var receiver = await WebhookReceiver.StartAsync(Secret);
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(
            ("bob@y.example", 550, "5.1.1 <bob@y.example>: Recipient address rejected: User unknown")));
        await using var ion = await IonServer.StartAsync(relay.Port, Webhook(receiver));

        var first = await ion.PublishAsync(new { action = "send", to = new[] { "alice@x.example", "bob@y.example" }, subject = "1", body_text = "secret body", tags = new[] { "welcome" } });
        await ion.WaitForStatusAsync(first, r => r.State == MessageState.Dead, Wait);
        var second = await ion.PublishAsync(new { action = "send", to = new[] { "alice@x.example", "bob@y.example" }, subject = "2", body_text = "x" });
        await ion.WaitForStatusAsync(second, r => r.State == MessageState.Sent, Wait);

        var taken = await receiver.WaitForAsync(t => t.Count(e => e.MessageId == first) == 4 && t.Count(e => e.MessageId == second) == 3, Wait);
        foreach (var e in receiver.Requests)
            output.WriteLine($"{e.Answered} {e.Body}");
        Assert.All(receiver.Requests, r => Assert.True(r.Verified, $"signature of {r.Body}"));
        Assert.Equal(["accepted", "sent", "failed", "dead"], taken.Where(e => e.MessageId == first).Select(e => e.Type));
        Assert.Equal(["accepted", "sent", "suppressed"], taken.Where(e => e.MessageId == second).Select(e => e.Type));

        var failed = taken.Single(e => e.MessageId == first && e.Type == "failed").Event;
        Assert.Equal(1, failed.GetProperty("version").GetInt32());
        Assert.Equal(1, failed.GetProperty("recipient_index").GetInt32());
        Assert.Equal("y.example", failed.GetProperty("recipient_domain").GetString());
        // Addresses only where ion may log them (Ion:Delivery:LogRecipientAddresses, off by default).
        Assert.False(failed.TryGetProperty("recipient", out _));
        Assert.Equal(550, failed.GetProperty("smtp_code").GetInt32());
        Assert.Contains("5.1.1", failed.GetProperty("reply").GetString(), StringComparison.Ordinal);
        Assert.Equal(["welcome"], failed.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(1, failed.GetProperty("attempt").GetInt32());
        var dead = taken.Single(e => e.MessageId == first && e.Type == "dead").Event;
        Assert.Equal("permanent", dead.GetProperty("failure_class").GetString());
        var sent = taken.Single(e => e.MessageId == second && e.Type == "sent").Event;
        Assert.Equal(0, sent.GetProperty("recipient_index").GetInt32());
        Assert.Equal(250, sent.GetProperty("smtp_code").GetInt32());
        var suppressed = taken.Single(e => e.MessageId == second && e.Type == "suppressed").Event;
        Assert.Equal(1, suppressed.GetProperty("recipient_index").GetInt32());
        Assert.StartsWith("suppressed (bounce since ", suppressed.GetProperty("reply").GetString(), StringComparison.Ordinal);
        // Never a body.
        Assert.DoesNotContain(receiver.Requests, r => r.Body.Contains("secret body", StringComparison.Ordinal));
        // Each event once here (nothing failed), each with its own id.
        Assert.Equal(taken.Count, taken.Select(e => e.Id).Distinct().Count());
        Assert.All(taken, e => Assert.Equal(e.Event.GetProperty("id").GetString(), e.Id));
    }

    [Fact]
    public async Task EachAttemptsEvents_SayWhichRelayTookIt_PrimaryOrFallback()
    {
        await using var receiver = await WebhookReceiver.StartAsync(Secret);
        await using var primary = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(("late@", 451, "4.2.0 Mailbox busy, try again later")));
        await using var fallback = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(primary.Port, Webhook(receiver,
            "--Ion:Smtp:Fallback:Host=127.0.0.1", $"--Ion:Smtp:Fallback:Port={fallback.Port}", "--Ion:Smtp:Fallback:Security=None",
            "--Ion:Smtp:Fallback:AfterDeferrals=1"));

        // alice is the primary's at once; late is deferred by it, then taken by the fallback.
        var id = await ion.PublishAsync(new { action = "send", to = new[] { "alice@x.example", "late@y.example" }, subject = "two relays", body_text = "x" });
        await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);

        var taken = await receiver.WaitForAsync(t => t.Count(e => e.MessageId == id) == 4, Wait);
        Assert.Equal(["accepted", "sent", "deferred", "sent"], taken.Select(e => e.Type));
        Assert.False(taken[0].Event.TryGetProperty("relay", out _));
        Assert.Equal(["primary", "primary", "fallback"], taken.Skip(1).Select(e => e.Event.GetProperty("relay").GetString()));
        Assert.Equal([0, 1], taken.Where(e => e.Type == "sent").Select(e => e.Event.GetProperty("recipient_index").GetInt32()));
    }

    [Fact]
    public async Task TheSignature_CoversTheTimestampAndTheBody_SoABadSecretATamperedBodyAndAReplayAreRefused()
    {
        await using var receiver = await WebhookReceiver.StartAsync(Secret);
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port, Webhook(receiver, "--Ion:Events:Webhooks:app:Types:0=accepted"));
        var id = await ion.PublishAsync(new { action = "send", recipient = "a@x.example", subject = "s", body_text = "x" });
        var request = (await receiver.WaitForAsync(t => t.Count == 1, Wait)).Single();
        Assert.Equal(id, request.MessageId);
        var at = DateTimeOffset.FromUnixTimeSeconds(long.Parse(request.Timestamp, System.Globalization.CultureInfo.InvariantCulture));

        Assert.True(WebhookReceiver.Verify(Secret, request.Id, request.Timestamp, request.Signature, request.Body, at));
        Assert.False(WebhookReceiver.Verify("another-secret-0123456789", request.Id, request.Timestamp, request.Signature, request.Body, at));
        Assert.False(WebhookReceiver.Verify(Secret, request.Id, request.Timestamp, request.Signature, request.Body.Replace(id, "other", StringComparison.Ordinal), at));
        // A replay: the same request ten minutes later is too old; with its timestamp moved on, the signature breaks.
        Assert.False(WebhookReceiver.Verify(Secret, request.Id, request.Timestamp, request.Signature, request.Body, at.AddMinutes(10)));
        var moved = (at.AddMinutes(10)).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        Assert.False(WebhookReceiver.Verify(Secret, request.Id, moved, request.Signature, request.Body, at.AddMinutes(10)));
        // Only the types asked for: the sent event never came.
        await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        await Task.Delay(1000, Token);
        Assert.Single(receiver.Requests);
    }

    [Fact]
    public async Task ABounceAndAComplaintThatArriveLater_BecomeBouncedAndComplainedEvents()
    {
        await using var receiver = await WebhookReceiver.StartAsync(Secret);
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port, Webhook(receiver, "--Ion:Delivery:LogRecipientAddresses=true"));
        var emailMessageId = Ion.Messages.MessageIds.MessageIdHeader("order-7", "test.example");

        using var bounce = new StringContent(Ion.Tests.Suppression.FeedbackSamples.SnsEnvelope(Ion.Tests.Suppression.FeedbackSamples.SesBounce(
            "Permanent", "General", emailMessageId, ("bob@y.example", "5.1.1", "smtp; 550 5.1.1 user unknown"))), System.Text.Encoding.UTF8, "text/plain");
        (await ion.Client.PostAsync("/v1/feedback/ses", bounce, Token)).EnsureSuccessStatusCode();
        using var complaint = new StringContent(Ion.Tests.Suppression.FeedbackSamples.SesComplaint("abuse", null, "carol@z.example"), System.Text.Encoding.UTF8, "application/json");
        (await ion.Client.PostAsync("/v1/feedback/ses", complaint, Token)).EnsureSuccessStatusCode();

        var taken = await receiver.WaitForAsync(t => t.Count == 2, Wait);
        foreach (var e in taken)
            output.WriteLine(e.Body);
        var bounced = taken.Single(e => e.Type == "bounced").Event;
        Assert.Equal("bob@y.example", bounced.GetProperty("recipient").GetString());
        Assert.Equal("ses", bounced.GetProperty("source").GetString());
        Assert.Equal(emailMessageId, bounced.GetProperty("email_message_id").GetString());
        Assert.False(bounced.TryGetProperty("message_id", out _));
        var complained = taken.Single(e => e.Type == "complained").Event;
        Assert.Equal("z.example", complained.GetProperty("recipient_domain").GetString());
        Assert.All(receiver.Requests, r => Assert.True(r.Verified));
    }

    [Fact]
    public async Task OnTheAwsStore_AWebhookWithoutItsQueue_IsRefusedAtStart_WithOneLineSayingWhy()
    {
        var data = Directory.CreateTempSubdirectory("ion-webhooks-aws-").FullName;
        try
        {
            var serve = await IonCli.RunAsync(data, ["serve", "--Ion:Store=Aws", "--Ion:Aws:Region=us-east-1",
                "--Ion:Aws:QueueUrl=http://127.0.0.1:9/queue/ion", "--Ion:Aws:DeadLetterQueueUrl=http://127.0.0.1:9/queue/ion-dlq", "--Ion:Aws:TableName=ion",
                "--Ion:Smtp:Host=127.0.0.1", "--Ion:Events:Webhooks:app:Url=http://127.0.0.1:9/events", $"--Ion:Events:Webhooks:app:Secret={Secret}"]);
            output.WriteLine(serve.Error);
            Assert.Equal(2, serve.ExitCode);
            Assert.Equal("ion: configuration: Ion:Aws:WebhookQueueUrls:app is not set: on the AWS store webhook app's events wait in an SQS queue"
                + " subscribed to Ion:Aws:EventsTopicArn (ion aws provision --webhook app creates both)", serve.Error.Trim());
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }
}
