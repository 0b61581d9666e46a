using System.Text.Json;
using Ion.Log;
using Ion.Queues;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Delivery;

/// <summary>The configured rate is an upper bound that holds (issue 7, item 9). How exact the limiter is over a minute,
/// at rates from 0.01 to 10,000 per second, is shown on a fake clock in SendRateTests; this is the real thing.</summary>
public class RateLimitTests(ITestOutputHelper output)
{
    [Fact]
    public async Task RateOf150PerSecond_IsNotExceeded_AcrossConnections()
    {
        var token = TestContext.Current.CancellationToken;
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Delivery:RatePerSecond=150", "--Ion:Delivery:Concurrency=3");
        const int count = 450;
        var bodies = Enumerable.Range(0, count)
            .Select(i => JsonSerializer.Serialize(new { action = "send", recipient = $"r{i}@example.com", subject = $"rate {i}", body_text = "x" }))
            .ToList();
        Assert.Empty((await ion.Services.GetRequiredService<Publisher>().PublishAsync(bodies, token)).Errors);

        var delivered = await relay.WaitForDeliveredAsync(count, TimeSpan.FromSeconds(60));

        // From the first MAIL FROM to the last, as the relay saw them: count − 1 intervals.
        var first = delivered.Min(t => t.StartedAt);
        var last = delivered.Max(t => t.StartedAt);
        var rate = (count - 1) / ((last - first) / 1000.0);
        output.WriteLine($"{count} messages in {last - first} ms: {rate:F1}/s");
        Assert.True(rate <= 150 * 1.01, $"{rate:F1} messages per second at a limit of 150");
        Assert.True(rate >= 75, $"{rate:F1} messages per second: far below the limit of 150");
        Assert.Equal(count, delivered.Select(t => t.ParseMessage().Subject).Distinct().Count());
    }
}
