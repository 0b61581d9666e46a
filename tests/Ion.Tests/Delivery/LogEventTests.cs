using System.Net.Http.Json;
using System.Text.Json;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Delivery;

/// <summary>The log a real <c>ion serve</c> writes, in JSON through the standard console formatter: one event per
/// outcome with its fields, recipient domains only unless a setting allows addresses, never a body.</summary>
public sealed class LogEventTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static async Task<(JsonElement Event, IReadOnlyCollection<string> Output)> SendAndReadAsync(params string[] extra)
    {
        await using var sink = await SmtpSink.StartAsync();
        var data = Directory.CreateTempSubdirectory("ion-log-").FullName;
        await using var ion = await IonProcess.StartAsync(Ports.Free(),
        [
            $"--Ion:DataDirectory={data}", "--Ion:Smtp:Host=127.0.0.1", $"--Ion:Smtp:Port={sink.Port}", "--Ion:Smtp:Security=None",
            "--Logging:Console:FormatterName=json", .. extra,
        ]);
        using var published = await ion.Client.PostAsJsonAsync("/v1/messages",
            new { action = "send", id = "logged-1", recipient = "Someone.Private@Example.org", subject = "Hello", body_text = "the secret body 4711" }, Token);
        published.EnsureSuccessStatusCode();
        await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30));
        JsonElement? decided = null;
        await IonServer.WaitUntilAsync(() => Task.FromResult((decided = Decided(ion.Output)) is not null), "the outcome's log event");
        return (decided!.Value, ion.Output);
    }

    private static JsonElement? Decided(IEnumerable<string> output)
    {
        foreach (var line in output.Where(l => l.StartsWith('{')))
        {
            using var json = JsonDocument.Parse(line);
            if (json.RootElement.GetProperty("Category").GetString() == "Ion.Delivery.BatchDelivery" && json.RootElement.GetProperty("EventId").GetInt32() == 1)
                return json.RootElement.Clone();
        }
        return null;
    }

    [Fact]
    public async Task AnOutcome_IsOneJsonEvent_WithItsFields_TheRecipientsDomain_AndNoBody()
    {
        var (decided, output) = await SendAndReadAsync();

        var state = decided.GetProperty("State");
        Assert.Equal("logged-1", state.GetProperty("MessageId").GetString());
        Assert.Equal("Complete", state.GetProperty("Action").GetString());
        Assert.Equal(250, state.GetProperty("SmtpCode").GetInt32());
        Assert.Equal("1", state.GetProperty("Attempts").ToString());
        Assert.Equal("example.org", state.GetProperty("Recipients").GetString());
        Assert.DoesNotContain(output, line => line.Contains("the secret body 4711", StringComparison.Ordinal));
        Assert.DoesNotContain(output, line => line.Contains("someone.private@", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task FullAddresses_OnlyWhenASettingAllowsThem()
    {
        var (decided, _) = await SendAndReadAsync("--Ion:Delivery:LogRecipientAddresses=true");

        Assert.Equal("Someone.Private@example.org", decided.GetProperty("State").GetProperty("Recipients").GetString());
    }
}
