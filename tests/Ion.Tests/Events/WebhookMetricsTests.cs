using Ion.Log;
using Ion.Tests.Fixtures;
using static Ion.Tests.Events.WebhookTests;

namespace Ion.Tests.Events;

/// <summary>Webhook tests that read ion's numbers off <c>/metrics</c>: they run alone (<see cref="MetricsCollection"/>),
/// as OpenTelemetry listens to meters by name, process-wide, and another in-process ion with a webhook named
/// <c>app</c> would report its own counts and gauges into the same series.</summary>
[Collection(nameof(MetricsCollection))]
public partial class WebhookMetricsTests(ITestOutputHelper output)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AReceiverThatIsDown_GetsEveryEventAfterwards_InOrderPerMessage_AndDeliveryDidNotWait()
    {
        await using var receiver = await WebhookReceiver.StartAsync(Secret);
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port, Webhook(receiver));
        await receiver.StopListeningAsync();

        List<string> ids = [];
        for (var i = 0; i < 30; i++)
            ids.Add(await ion.PublishAsync(new { action = "send", recipient = $"r{i}@x.example", subject = $"m{i}", body_text = "x" }));
        // Delivery goes on while the receiver is down.
        foreach (var id in ids)
            await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        Assert.Equal(30, relay.Transactions.Count);
        // Down for a while (connection refused), then answering 503 for a while, then back.
        await Task.Delay(3000, Token);
        receiver.Status = 503;
        await receiver.StartListeningAsync();
        await Task.Delay(3000, Token);
        Assert.Empty(receiver.Taken);
        Assert.NotEmpty(receiver.Requests);
        receiver.Status = 200;

        var taken = await receiver.WaitForAsync(t => ids.All(id => t.Any(e => e.MessageId == id && e.Type == "sent")), TimeSpan.FromSeconds(60));
        foreach (var id in ids)
        {
            // In order per message: each sent after its accepted; none lost (a repeat is allowed, at least once).
            var types = taken.Where(e => e.MessageId == id).Select(e => e.Type).Distinct().ToList();
            Assert.Equal(["accepted", "sent"], types);
        }
        using var metrics = await ion.Client.GetAsync("/metrics", Token);
        var text = await metrics.Content.ReadAsStringAsync(Token);
        Assert.Matches("ion_webhook_events_total\\{[^}]*outcome=\"delivered\"[^}]*\\} 6\\d", text);
        Assert.Matches("ion_webhook_events_total\\{[^}]*outcome=\"failed\"[^}]*\\} [1-9]", text);
    }

    [Fact]
    public async Task AnEventNeverTaken_IsDeadAfterRetryFor_WithWhy_InTheMetrics_AndHoldsNothingBack()
    {
        await using var receiver = await WebhookReceiver.StartAsync(Secret);
        receiver.Status = 500;
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port, Webhook(receiver, "--Ion:Events:RetryFor=00:00:02", "--Ion:Events:Webhooks:app:Types:0=accepted"));
        var first = await ion.PublishAsync(new { action = "send", recipient = "a@x.example", subject = "s", body_text = "x" });

        var deadline = TimeProvider.System.GetUtcNow() + Wait;
        string text;
        do
        {
            await Task.Delay(500, Token);
            using var metrics = await ion.Client.GetAsync("/metrics", Token);
            text = await metrics.Content.ReadAsStringAsync(Token);
        }
        while (!DeadOne().IsMatch(text) && TimeProvider.System.GetUtcNow() < deadline);
        output.WriteLine(string.Join('\n', text.Split('\n').Where(l => l.Contains("webhook", StringComparison.Ordinal))));
        Assert.Matches(DeadOne(), text);
        Assert.Matches("ion_webhook_pending\\{[^}]*webhook=\"app\"[^}]*\\} 0", text);
        Assert.Matches("ion_webhook_events_total\\{[^}]*outcome=\"dead\"[^}]*\\} 1", text);
        Assert.True(receiver.Requests.Count >= 2, $"{receiver.Requests.Count} request(s)");

        // The receiver is fine again: the next events go, the dead one stays dead.
        receiver.Status = 200;
        var second = await ion.PublishAsync(new { action = "send", recipient = "b@x.example", subject = "s", body_text = "x" });
        var taken = await receiver.WaitForAsync(t => t.Any(e => e.MessageId == second), Wait);
        Assert.DoesNotContain(taken, e => e.MessageId == first);
    }

    [System.Text.RegularExpressions.GeneratedRegex("ion_webhook_dead\\{[^}]*webhook=\"app\"[^}]*\\} 1")]
    private static partial System.Text.RegularExpressions.Regex DeadOne();
}
