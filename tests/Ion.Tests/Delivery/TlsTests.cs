using System.Net.Http.Json;
using System.Text.Json;
using Ion.Log;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Delivery;

/// <summary>TLS and AUTH against a relay that requires both (STARTTLS, or TLS on connect).</summary>
public class TlsTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private static readonly object Message = new { action = "send", recipient = "a@example.com", subject = "over TLS", body_text = "x" };

    [Fact]
    public async Task StartTls_WithAuth_AndAPinnedCertificate_Delivers()
    {
        await using var relay = await TlsSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port, Secure(relay, "StartTls"));

        var id = await ion.PublishAsync(Message);

        await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        var envelope = Assert.Single(relay.Envelopes());
        Assert.True(envelope.GetProperty("secure").GetBoolean());
        Assert.Equal(TlsSmtpServer.User, envelope.GetProperty("user").GetString());
        Assert.Equal("a@example.com", envelope.GetProperty("to")[0].GetString());
    }

    [Fact]
    public async Task SslOnConnect_Delivers()
    {
        await using var relay = await TlsSmtpServer.StartAsync(implicitTls: true);
        await using var ion = await IonServer.StartAsync(relay.Port, Secure(relay, "SslOnConnect"));

        var id = await ion.PublishAsync(Message);

        await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        Assert.True(Assert.Single(relay.Envelopes()).GetProperty("secure").GetBoolean());
    }

    [Fact]
    public async Task WrongPassword_PausesDelivery_WithoutSpendingAttempts()
    {
        await using var relay = await TlsSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port, [.. Secure(relay, "StartTls"), "--Ion:Smtp:Password=wrong"]);

        var id = await ion.PublishAsync(Message);

        var health = await WaitForRelayDownAsync(ion);
        Assert.Contains("authentication", health.GetProperty("relay").GetProperty("error").GetString(), StringComparison.OrdinalIgnoreCase);
        var status = await ion.StatusAsync(id);
        Assert.Equal(MessageState.Queued, status!.State);
        Assert.Empty(status.Attempts);
        Assert.Empty(relay.Envelopes());
    }

    [Fact]
    public async Task UntrustedCertificate_IsRefused_AndPausesDelivery()
    {
        await using var relay = await TlsSmtpServer.StartAsync();
        // No pin: the self-signed certificate does not chain to a trusted root.
        string[] settings = [.. Secure(relay, "StartTls").Where(s => !s.StartsWith("--Ion:Smtp:CertificateSha256", StringComparison.Ordinal))];
        await using var ion = await IonServer.StartAsync(relay.Port, settings);

        var id = await ion.PublishAsync(Message);

        var health = await WaitForRelayDownAsync(ion);
        Assert.Contains("TLS", health.GetProperty("relay").GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Empty((await ion.StatusAsync(id))!.Attempts);
        Assert.Empty(relay.Envelopes());
    }

    [Fact]
    public async Task StartTls_IsRequired_NotOpportunistic()
    {
        // smtp-sink offers no STARTTLS: with the default security ion must not fall back to plain text.
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(sink.Port, "--Ion:Smtp:Security=StartTls");

        var id = await ion.PublishAsync(Message);

        await WaitForRelayDownAsync(ion);
        Assert.Empty((await ion.StatusAsync(id))!.Attempts);
        Assert.Equal(0, sink.Count);
    }

    private static string[] Secure(TlsSmtpServer relay, string security) =>
    [
        "--Ion:Smtp:Host=127.0.0.1",
        $"--Ion:Smtp:Security={security}",
        $"--Ion:Smtp:Username={TlsSmtpServer.User}",
        $"--Ion:Smtp:Password={TlsSmtpServer.Password}",
        $"--Ion:Smtp:CertificateSha256={relay.CertificateSha256}",
    ];

    private static async Task<JsonElement> WaitForRelayDownAsync(IonServer ion)
    {
        var deadline = Environment.TickCount64 + (long)Wait.TotalMilliseconds;
        while (true)
        {
            var health = await ion.Client.GetFromJsonAsync<JsonElement>("/healthz", TestContext.Current.CancellationToken);
            if (health.GetProperty("relay").GetProperty("state").GetString() == "down")
                return health;
            if (Environment.TickCount64 > deadline)
                throw new TimeoutException($"relay never reported down: {health}");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }
}
