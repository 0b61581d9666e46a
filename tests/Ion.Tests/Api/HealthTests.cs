using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Api;

/// <summary><c>/healthz</c> and <c>/readyz</c>, ASP.NET Core health checks over a real ion: alive, ready, and why not.</summary>
public sealed class HealthTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task WithTheRelayUp_BothAreHealthy_WithTheQueueCounts()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(sink.Port);

        foreach (var path in new[] { "/healthz", "/readyz" })
        {
            using var response = await ion.Client.GetAsync(path, Token);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var health = await response.Content.ReadFromJsonAsync<JsonElement>(Token);
            Assert.Equal("ok", health.GetProperty("status").GetString());
            Assert.Equal("up", health.GetProperty("relay").GetProperty("state").GetString());
            Assert.Equal(0, health.GetProperty("queue").GetProperty("ready").GetInt64());
            Assert.Equal(["relay:healthy", "store:healthy"],
                health.GetProperty("checks").EnumerateArray().Select(c => $"{c.GetProperty("name")}:{c.GetProperty("status")}").Order());
        }
    }

    [Fact]
    public async Task WithTheRelayDown_ReadyIsDegraded_AndSaysWhy_StillAccepting()
    {
        await using var ion = await IonServer.StartAsync(Ports.Free(), "--Ion:Smtp:ConnectTimeout=00:00:02");
        await ion.PublishAsync(new { action = "send", recipient = "a@example.com", subject = "waits", body_text = "x" });
        await IonServer.WaitUntilAsync(async () => await ion.RelayStateAsync() == "down", "the relay down");

        using var ready = await ion.Client.GetAsync("/readyz", Token);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        var health = await ready.Content.ReadFromJsonAsync<JsonElement>(Token);
        Assert.Equal("degraded", health.GetProperty("status").GetString());
        var relay = health.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "relay");
        Assert.Equal("degraded", relay.GetProperty("status").GetString());
        Assert.StartsWith("relay down: ", relay.GetProperty("description").GetString(), StringComparison.Ordinal);
        Assert.Contains("connect", relay.GetProperty("description").GetString(), StringComparison.OrdinalIgnoreCase);
        Assert.Equal(HttpStatusCode.OK, (await ion.Client.GetAsync("/healthz", Token)).StatusCode);
    }
}
