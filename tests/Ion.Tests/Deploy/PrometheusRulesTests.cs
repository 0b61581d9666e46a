using System.Globalization;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Ion.Log;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Deploy;

/// <summary>
/// deploy/prometheus with the real tools: promtool checks the rules and runs their unit tests as shipped, and a real
/// Prometheus, configured as the example says, scrapes a real ion delivering to a real SMTP server and raises the
/// dead-letter alerts.
/// </summary>
// Prometheus reads ion's counts, which another in-process ion delivering at the same time would add to.
[Collection(nameof(MetricsCollection))]
public sealed partial class PrometheusRulesTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string Folder => Repository.Path("deploy", "prometheus");

    private static Task<string> ReadAsync(string name) => File.ReadAllTextAsync(Path.Combine(Folder, name), Token);

    /// <summary>A temp copy of deploy/prometheus with <paramref name="original"/> replaced in <paramref name="file"/>
    /// (which must contain it, so that a test cannot pass because the file changed under it).</summary>
    private static async Task<string> BrokenCopyAsync(string file, string original, string replacement)
    {
        var copy = Directory.CreateTempSubdirectory("ion-rules-").FullName;
        foreach (var path in Directory.GetFiles(Folder))
            File.Copy(path, Path.Combine(copy, Path.GetFileName(path)));
        var text = await File.ReadAllTextAsync(Path.Combine(copy, file), Token);
        Assert.Contains(original, text, StringComparison.Ordinal);
        await File.WriteAllTextAsync(Path.Combine(copy, file), text.Replace(original, replacement, StringComparison.Ordinal), Token);
        return copy;
    }

    [Fact]
    public async Task PromtoolCheckRules_PassesTheShippedRules()
    {
        var result = await Promtool.RunAsync(Folder, "check", "rules", "ion.rules.yml");

        Assert.True(result.ExitCode == 0, result.Output);
        // 8 alerts and 4 recording rules.
        Assert.Contains("SUCCESS: 12 rules found", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PromtoolTestRules_PassesTheUnitTests()
    {
        var result = await Promtool.RunAsync(Folder, "test", "rules", "ion.rules.test.yml");

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("SUCCESS", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("FAILED", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EveryAlert_HasUnitTests_ThatSeeItFire_AndNotFire()
    {
        var rules = await ReadAsync("ion.rules.yml");
        var tests = await ReadAsync("ion.rules.test.yml");
        var alerts = AlertName().Matches(rules).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(["IonDown", "IonBacklog", "IonOldestMessageAge", "IonDeadLettered", "IonDeadLettersWaiting", "IonRelayCircuitOpen", "IonStoreFailing", "IonRelayThrottled"], alerts);
        var expectations = Expectation().Matches(tests).Select(m => (Alert: m.Groups[1].Value, Fires: m.Groups[2].Value.Length == 0)).ToList();
        foreach (var alert in alerts)
        {
            Assert.Contains((alert, true), expectations);
            Assert.Contains((alert, false), expectations);
        }
    }

    [Theory]
    [InlineData("expr: ion_queue_depth > 1000", "expr: ion_queue_depth > > 1000", "parse error")]
    [InlineData("{{ $value | humanizeDuration }}", "{{ $value | humaniseDuration }}", "function \"humaniseDuration\" not defined")]
    [InlineData("for: 15m\n", "for: fifteen minutes\n", "not a valid duration string")]
    [InlineData("  - name: ion\n", "  - nme: ion\n", "field nme not found")]
    public async Task PromtoolCheckRules_FailsOnABrokenCopy(string original, string broken, string expected)
    {
        var copy = await BrokenCopyAsync("ion.rules.yml", original, broken);
        try
        {
            var result = await Promtool.RunAsync(copy, "check", "rules", "ion.rules.yml");

            Assert.True(result.ExitCode != 0, result.Output);
            Assert.Contains(expected, result.Output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    [Theory]
    [InlineData("expr: ion_queue_depth > 1000", "expr: ion_queue_depth > 2000", "alertname: IonBacklog")]
    [InlineData("expr: min without (relay) (ion_relay_circuit_open) == 1\n        for: 5m", "expr: min without (relay) (ion_relay_circuit_open) == 1\n        for: 10m", "alertname: IonRelayCircuitOpen")]
    [InlineData("increase(ion_messages_dead_lettered_total[10m]) > 0", "ion_messages_dead_lettered_total > 0", "alertname: IonDeadLettered")]
    public async Task PromtoolTestRules_FailsWhenARuleChanges(string original, string changed, string expected)
    {
        var copy = await BrokenCopyAsync("ion.rules.yml", original, changed);
        try
        {
            var result = await Promtool.RunAsync(copy, "test", "rules", "ion.rules.test.yml");

            Assert.True(result.ExitCode != 0, result.Output);
            Assert.Contains("FAILED", result.Output, StringComparison.Ordinal);
            Assert.Contains(expected, result.Output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    [Fact]
    public async Task PromtoolCheckConfig_PassesTheExample_WithItsRulesAndTokenFile()
    {
        var copy = Directory.CreateTempSubdirectory("ion-prometheus-config-").FullName;
        try
        {
            File.Copy(Path.Combine(Folder, "prometheus.example.yml"), Path.Combine(copy, "prometheus.yml"));
            File.Copy(Path.Combine(Folder, "ion.rules.yml"), Path.Combine(copy, "ion.rules.yml"));
            // promtool checks that the token file the example names exists.
            await File.WriteAllTextAsync(Path.Combine(copy, "ion-token"), "0123456789abcdef-prometheus\n", Token);

            var result = await Promtool.RunAsync(copy, "check", "config", "prometheus.yml");

            Assert.True(result.ExitCode == 0, result.Output);
            Assert.Contains("SUCCESS: prometheus.yml is valid prometheus config file syntax", result.Output, StringComparison.Ordinal);
            Assert.Contains("SUCCESS: 12 rules found", result.Output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    [Fact]
    public async Task ARealPrometheus_ScrapesIonWithTheToken_SeesMailFlow_AndRaisesTheDeadLetterAlerts()
    {
        const string secret = "0123456789abcdef-prometheus-scrape";
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(("nobody@example.com", 550, "5.1.1 No such user")));
        await using var ion = await IonServer.StartAsync(relay.Port, $"--Ion:Api:Token={secret}", "--Ion:Metrics:QueueInterval=00:00:00.200");
        ion.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);

        // The example as shipped, but for ion's address and a 1-second scrape and evaluation; its rules as shipped, and
        // the token in the file it names.
        var config = await ReadAsync("prometheus.example.yml");
        foreach (var (original, replacement) in new[]
        {
            ("scrape_interval: 15s", "scrape_interval: 1s"),
            ("evaluation_interval: 15s", "evaluation_interval: 1s"),
            ("'127.0.0.1:8780'", $"'{ion.Client.BaseAddress!.Authority}'"),
        })
        {
            Assert.Contains(original, config, StringComparison.Ordinal);
            config = config.Replace(original, replacement, StringComparison.Ordinal);
        }
        await using var prometheus = await PrometheusServer.StartAsync(config, new Dictionary<string, string>
        {
            ["ion.rules.yml"] = await ReadAsync("ion.rules.yml"),
            ["ion-token"] = secret + "\n",
        });

        async Task<double?> ValueAsync(string promql) => (await prometheus.QueryAsync(promql)) is [var one] ? one.Value : null;
        async Task WaitForAsync(string promql, double value, bool orMore = false)
        {
            double? last = null;
            try
            {
                await IonServer.WaitUntilAsync(async () => (last = await ValueAsync(promql)) == value || (orMore && last > value), $"{promql} == {value}", Wait);
            }
            catch (TimeoutException)
            {
                Assert.Fail($"Prometheus never saw {promql} {(orMore ? ">=" : "==")} {value} (last: {last?.ToString(CultureInfo.InvariantCulture) ?? "no single series"}); " +
                    $"targets: {string.Join(", ", await prometheus.TargetsAsync())}\n{prometheus.Log}");
            }
        }

        // Scraped (with the token: ion answers 401 without it), everything at 0, nothing pending or firing.
        await WaitForAsync("ion_messages_sent_total", 0);
        Assert.Equal([("up", "")], (await prometheus.TargetsAsync()).Select(t => (t.Health, t.LastError)));
        Assert.Equal(0, await ValueAsync("ion_messages_dead_lettered_total{failure_class=\"permanent\"}"));
        Assert.Equal(0, await ValueAsync("ion_dead_letters_depth"));
        Assert.Equal(0, await ValueAsync("ion_relay_circuit_open"));
        Assert.Empty(await prometheus.AlertsAsync());

        var sent = new[]
        {
            await ion.PublishAsync(new { action = "send", recipient = "a@example.com", subject = "one", body_text = "x" }),
            await ion.PublishAsync(new { action = "send", recipient = "b@example.com", subject = "two", body_text = "x" }),
        };
        foreach (var id in sent)
            await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        await WaitForAsync("ion_messages_sent_total", 2);
        await WaitForAsync("ion_messages_accepted_total", 2);
        await WaitForAsync("ion_delivery_latency_seconds_count", 2);
        // The recording rule has the last minute's mail (extrapolated, so at least what was sent) once it is evaluated
        // after the scrape that saw it.
        await WaitForAsync("instance:ion_messages_sent:increase1m", 2, orMore: true);
        Assert.Empty(await prometheus.AlertsAsync());

        var refused = await ion.PublishAsync(new { action = "send", recipient = "nobody@example.com", subject = "three", body_text = "x" });
        await ion.WaitForStatusAsync(refused, r => r.State == MessageState.Dead, Wait);
        await WaitForAsync("ion_messages_dead_lettered_total{failure_class=\"permanent\"}", 1);
        await WaitForAsync("ion_dead_letters_depth", 1);
        await WaitForAsync("ion_recipients_refused_total", 1);

        // IonDeadLettered fires at once, naming the class; IonDeadLettersWaiting waits its hour, pending; nothing else.
        IReadOnlyList<(string Name, string State, Dictionary<string, string> Labels)> alerts = [];
        await IonServer.WaitUntilAsync(async () => (alerts = await prometheus.AlertsAsync()).Count == 2,
            "two alerts", Wait);
        var byName = alerts.OrderBy(a => a.Name, StringComparer.Ordinal).ToList();
        Assert.Equal([("IonDeadLettered", "firing"), ("IonDeadLettersWaiting", "pending")], byName.Select(a => (a.Name, a.State)));
        Assert.Equal("permanent", byName[0].Labels["failure_class"]);
        Assert.Equal("warning", byName[0].Labels["severity"]);
        Assert.Equal(ion.Client.BaseAddress!.Authority, byName[1].Labels["instance"]);
    }

    [GeneratedRegex(@"^\s*- alert: (\w+)$", RegexOptions.Multiline)]
    private static partial Regex AlertName();

    // An alert_rule_test's alert and whether it expects it firing ("exp_alerts:" with a list) or not ("exp_alerts: []").
    [GeneratedRegex(@"alertname: (\w+)\n\s*exp_alerts:( \[\])?$", RegexOptions.Multiline)]
    private static partial Regex Expectation();
}
