using System.Text.Json;
using Ion.Log;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Events;

/// <summary>Delivery events on the AWS store (issue 15, item 1): ion publishes each event once to the events topic on
/// fauxqs, other services subscribe to it the AWS way (a queue, filtering on the <c>type</c> attribute), and each
/// webhook's queue on the topic feeds a real, signature-checking receiver from <c>ion serve</c>.</summary>
public sealed class AwsEventsTests(AwsEmulators aws, ITestOutputHelper output) : IClassFixture<AwsEmulators>
{
    private const string Secret = "webhook-secret-0123456789";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string[] Webhook(WebhookReceiver receiver, params string[] more) =>
        [$"--Ion:Events:Webhooks:app:Url={receiver.Url}", $"--Ion:Events:Webhooks:app:Secret={Secret}", .. more];

    [Fact]
    public async Task A550_5_1_1_OnAws_GivesTheSameEventsAsOneMachine_OnTheTopic_AndSignedToTheWebhook()
    {
        var resources = await aws.ProvisionAsync(events: true, webhooks: ["app"]);
        var subscriber = await aws.ObserveAsync(resources.EventsTopicArn!);
        await using var receiver = await WebhookReceiver.StartAsync(Secret);
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(
            ("bob@y.example", 550, "5.1.1 <bob@y.example>: Recipient address rejected: User unknown")));
        await using var ion = await IonServer.StartAsync(relay.Port, [.. aws.Settings(resources), .. Webhook(receiver)]);

        var first = await ion.PublishAsync(new { action = "send", to = new[] { "alice@x.example", "bob@y.example" }, subject = "1", body_text = "secret body", tags = new[] { "welcome" } });
        await ion.WaitForStatusAsync(first, r => r.State == MessageState.Dead, Wait);
        var second = await ion.PublishAsync(new { action = "send", to = new[] { "alice@x.example", "bob@y.example" }, subject = "2", body_text = "x" });
        await ion.WaitForStatusAsync(second, r => r.State == MessageState.Sent, Wait);

        var taken = await receiver.WaitForAsync(t => t.Select(e => e.Id).Distinct().Count() == 7, Wait);
        foreach (var e in receiver.Requests)
            output.WriteLine($"{e.Answered} {e.Body}");
        Assert.All(receiver.Requests, r => Assert.True(r.Verified, $"signature of {r.Body}"));
        // Standard SNS and SQS keep no order: the set of each message's events, and their order by time.
        Assert.Equal(["accepted", "dead", "failed", "sent"], Types(taken.Where(e => e.MessageId == first)));
        Assert.Equal(["accepted", "sent", "suppressed"], Types(taken.Where(e => e.MessageId == second)));
        Assert.Equal("accepted", taken.Where(e => e.MessageId == first).MinBy(e => e.Event.GetProperty("at").GetDateTimeOffset())!.Type);
        var failed = taken.First(e => e.MessageId == first && e.Type == "failed").Event;
        Assert.Equal(550, failed.GetProperty("smtp_code").GetInt32());
        Assert.Equal(["welcome"], failed.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        Assert.DoesNotContain(receiver.Requests, r => r.Body.Contains("secret body", StringComparison.Ordinal));

        // Another service's queue on the topic has every event once, its JSON as the body, its type as an attribute.
        var published = await aws.PeekAllAsync(subscriber);
        Assert.Equal(7, published.Count);
        Assert.All(published, m => Assert.Equal(JsonDocument.Parse(m.Body).RootElement.GetProperty("type").GetString(), m.MessageAttributes["type"].StringValue));
        Assert.Equal(taken.Select(e => e.Id).Distinct().Order(), published.Select(m => JsonDocument.Parse(m.Body).RootElement.GetProperty("id").GetString()).Order());
        // The webhook's queue is empty once it took them all.
        await IonServer.WaitUntilAsync(async () => (await aws.PeekAllAsync(resources.WebhookQueueUrls!["app"])).Count == 0, "the webhook's queue empty", Wait);
    }

    [Fact]
    public async Task OnAws_AReceiverThatIsDown_GetsTheEventsAfterwards_AndAWebhookTakesOnlyTheTypesItAsksFor()
    {
        var resources = await aws.ProvisionAsync(webhooks: ["app"]);
        await using var receiver = await WebhookReceiver.StartAsync(Secret);
        receiver.Status = 503;
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port, [.. aws.Settings(resources), .. Webhook(receiver, "--Ion:Events:Webhooks:app:Types:0=sent")]);

        List<string> ids = [];
        for (var i = 0; i < 5; i++)
            ids.Add(await ion.PublishAsync(new { action = "send", recipient = $"r{i}@x.example", subject = $"m{i}", body_text = "x" }));
        foreach (var id in ids)
            await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        await receiver.WaitForAsync(_ => receiver.Requests.Count > 0, Wait);
        receiver.Status = 200;

        var taken = await receiver.WaitForAsync(t => ids.All(id => t.Any(e => e.MessageId == id)), Wait);
        Assert.All(taken, e => Assert.Equal("sent", e.Type));
        Assert.All(receiver.Requests, r => Assert.Equal("sent", r.Type));
    }

    [Fact]
    public async Task OnAws_AnEventNeverTaken_GoesToTheWebhooksDeadLetterQueue_WithWhy()
    {
        var resources = await aws.ProvisionAsync(webhooks: ["app"]);
        await using var receiver = await WebhookReceiver.StartAsync(Secret);
        receiver.Status = 500;
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port,
            [.. aws.Settings(resources), .. Webhook(receiver, "--Ion:Events:RetryFor=00:00:03", "--Ion:Events:Webhooks:app:Types:0=accepted")]);
        var id = await ion.PublishAsync(new { action = "send", recipient = "a@x.example", subject = "s", body_text = "x" });

        var deadLetters = resources.WebhookQueueUrls!["app"] + "-dead";
        List<Amazon.SQS.Model.Message> dead = [];
        await IonServer.WaitUntilAsync(async () => (dead = await aws.PeekAllAsync(deadLetters)).Count == 1, "the event in the dead-letter queue", Wait);
        var letter = dead.Single();
        Assert.Equal(id, JsonDocument.Parse(letter.Body).RootElement.GetProperty("message_id").GetString());
        Assert.Contains("answered 500", letter.MessageAttributes["ion-reason"].StringValue, StringComparison.Ordinal);
        Assert.Equal("app", letter.MessageAttributes["ion-webhook"].StringValue);
        Assert.Empty(await aws.PeekAllAsync(resources.WebhookQueueUrls["app"]));
        // The backlog says so (the dashboard's panel and /v1/webhooks read it).
        await IonServer.WaitUntilAsync(async () =>
        {
            using var webhooks = JsonDocument.Parse(await ion.Client.GetStringAsync("/v1/webhooks", Token));
            return webhooks.RootElement.ToString().Contains("\"dead\":1", StringComparison.Ordinal);
        }, "the dead event in /v1/webhooks", Wait);
    }

    private static List<string> Types(IEnumerable<WebhookReceiver.Received> events) => [.. events.Select(e => e.Type).Distinct().Order()];
}
