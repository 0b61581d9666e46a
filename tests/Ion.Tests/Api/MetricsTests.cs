using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Ion.Log;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Api;

/// <summary><c>GET /metrics</c> on a real ion delivering to a real SMTP server: the numbers move as mail flows.</summary>
[Collection(nameof(MetricsCollection))]
public sealed class MetricsTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>The samples of a Prometheus text exposition, by series as written (name and labels).</summary>
    private static async Task<Dictionary<string, double>> ScrapeAsync(HttpClient client)
    {
        var text = await client.GetStringAsync("/metrics", Token);
        return text.Split('\n')
            .Where(line => line.Length > 0 && line[0] != '#')
            .Select(line => line[..line.LastIndexOf(' ')].Replace("otel_scope_name=\"Ion\",", "", StringComparison.Ordinal)
                .Replace("{otel_scope_name=\"Ion\"}", "", StringComparison.Ordinal) is var series
                ? (Series: series, Value: double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture))
                : default)
            .ToDictionary(s => s.Series, s => s.Value);
    }

    [Fact]
    public async Task TheNumbers_MoveAsMailFlows_SentRefusedDeadLetteredRedriven_AndTheGauges()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(("nobody@example.com", 550, "5.1.1 No such user")));
        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Metrics:QueueInterval=00:00:00.200");

        var before = await ScrapeAsync(ion.Client);
        Assert.Equal(0, before["ion_messages_sent_total{relay=\"primary\"}"]);
        Assert.Equal(0, before["ion_messages_dead_lettered_total{failure_class=\"permanent\"}"]);
        Assert.Equal(0, before["ion_relay_circuit_open{relay=\"primary\"}"]);

        var sent = new[]
        {
            await ion.PublishAsync(new { action = "send", recipient = "a@example.com", subject = "one", body_text = "x" }),
            await ion.PublishAsync(new { action = "send", recipient = "b@example.com", subject = "two", body_text = "x" }),
        };
        var refused = await ion.PublishAsync(new { action = "send", recipient = "nobody@example.com", subject = "three", body_text = "x" });
        foreach (var id in sent)
            await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        await ion.WaitForStatusAsync(refused, r => r.State == MessageState.Dead, Wait);

        Dictionary<string, double> after = [];
        await IonServer.WaitUntilAsync(async () => (after = await ScrapeAsync(ion.Client)).GetValueOrDefault("ion_dead_letters_depth") == 1,
            "the dead-letter gauge at 1");
        Assert.Equal(3, after["ion_messages_accepted_total"]);
        Assert.Equal(2, after["ion_messages_sent_total{relay=\"primary\"}"]);
        Assert.Equal(1, after["ion_messages_dead_lettered_total{failure_class=\"permanent\"}"]);
        Assert.Equal(0, after["ion_messages_dead_lettered_total{failure_class=\"transient\"}"]);
        Assert.Equal(1, after["ion_recipients_refused_total"]);
        Assert.Equal(3, after["ion_smtp_send_duration_seconds_count{relay=\"primary\"}"]);
        Assert.Equal(2, after["ion_delivery_latency_seconds_count"]);
        Assert.Equal(0, after["ion_queue_depth"]);
        Assert.Equal(0, after["ion_relay_circuit_open{relay=\"primary\"}"]);

        using var redrive = await ion.Client.PostAsJsonAsync("/v1/dead-letters/redrive", new { ids = new[] { refused } }, Token);
        redrive.EnsureSuccessStatusCode();
        await IonServer.WaitUntilAsync(async () => (await ScrapeAsync(ion.Client))["ion_messages_redriven_total"] == 1, "one redriven");
    }

    [Fact]
    public async Task WhileTheRelayIsDown_TheCircuitGaugeSaysSo_AndTheOldestMessageAges()
    {
        await using var ion = await IonServer.StartAsync(Ports.Free(), "--Ion:Metrics:QueueInterval=00:00:00.200", "--Ion:Smtp:ConnectTimeout=00:00:02");
        await ion.PublishAsync(new { action = "send", recipient = "a@example.com", subject = "waits", body_text = "x" });

        Dictionary<string, double> metrics = [];
        await IonServer.WaitUntilAsync(async () => (metrics = await ScrapeAsync(ion.Client)).GetValueOrDefault("ion_relay_circuit_open{relay=\"primary\"}") == 1,
            "the circuit open");
        await IonServer.WaitUntilAsync(async () => (metrics = await ScrapeAsync(ion.Client)).GetValueOrDefault("ion_queue_oldest_age_seconds") > 0.5,
            "the oldest message half a second old");
        Assert.Equal(0, metrics["ion_messages_sent_total{relay=\"primary\"}"]);
        Assert.Equal(0, metrics["ion_messages_retried_total{relay=\"primary\"}"]);
    }

    [Fact]
    public async Task WithAFallbackRelay_TheRelayMetricsSayWhichRelay()
    {
        await using var fallback = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(Ports.Free(), "--Ion:Smtp:ConnectTimeout=00:00:02",
            "--Ion:Smtp:Fallback:Host=127.0.0.1", $"--Ion:Smtp:Fallback:Port={fallback.Port}", "--Ion:Smtp:Fallback:Security=None");

        var before = await ScrapeAsync(ion.Client);
        Assert.Equal(0, before["ion_messages_sent_total{relay=\"fallback\"}"]);
        Assert.Equal(0, before["ion_messages_retried_total{relay=\"fallback\"}"]);

        var id = await ion.PublishAsync(new { action = "send", recipient = "a@example.com", subject = "carried", body_text = "x" });
        await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);

        // A scrape is answered from a copy for a moment: wait for one taken after the send.
        Dictionary<string, double> after = [];
        await IonServer.WaitUntilAsync(async () => (after = await ScrapeAsync(ion.Client)).GetValueOrDefault("ion_messages_sent_total{relay=\"fallback\"}") == 1,
            "one message sent through the fallback");
        Assert.Equal(1, after["ion_relay_circuit_open{relay=\"primary\"}"]);
        Assert.Equal(0, after["ion_relay_circuit_open{relay=\"fallback\"}"]);
        Assert.Equal(1, after["ion_messages_sent_total{relay=\"fallback\"}"]);
        Assert.Equal(0, after["ion_messages_sent_total{relay=\"primary\"}"]);
        Assert.Equal(1, after["ion_smtp_send_duration_seconds_count{relay=\"fallback\"}"]);
    }

    [Fact]
    public async Task TheTokenRuleApplies_UnlessOpenedOnLoopback_AndMetricsCanBeTurnedOff()
    {
        const string secret = "0123456789abcdef-metrics-token";
        await using (var ion = await IonServer.StartAsync(Ports.Free(), $"--Ion:Api:Token={secret}"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await ion.Client.GetAsync("/metrics", Token)).StatusCode);
            ion.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
            Assert.Contains("ion_messages_sent_total", await ion.Client.GetStringAsync("/metrics", Token), StringComparison.Ordinal);
        }
        await using (var ion = await IonServer.StartAsync(Ports.Free(), $"--Ion:Api:Token={secret}", "--Ion:Metrics:OpenOnLoopback=true"))
        {
            Assert.Contains("ion_messages_sent_total", await ion.Client.GetStringAsync("/metrics", Token), StringComparison.Ordinal);
            // Only /metrics is opened.
            Assert.Equal(HttpStatusCode.Unauthorized, (await ion.Client.GetAsync("/v1/dead-letters", Token)).StatusCode);
        }
        await using (var ion = await IonServer.StartAsync(Ports.Free(), "--Ion:Metrics:Enabled=false"))
            Assert.Equal(HttpStatusCode.NotFound, (await ion.Client.GetAsync("/metrics", Token)).StatusCode);
    }
}
