using System.Net.Http.Json;
using System.Text.Json;
using Ion.Log;
using Ion.Tests.Fixtures;
using Microsoft.Extensions.Options;

namespace Ion.Tests.Delivery;

/// <summary>
/// A second relay, <c>Ion:Smtp:Fallback</c> (issue 16): it carries the mail while the primary is down, and a message
/// the primary keeps deferring; a throttling primary is slowed down for, not left; nobody is sent a message twice
/// across the two; with both down nothing is charged or dead-lettered. Real servers on both sides.
/// </summary>
public class FallbackRelayTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>The settings of a fallback relay on this machine, at <paramref name="port"/>.</summary>
    private static string[] Fallback(int port, params string[] more) =>
    [
        "--Ion:Smtp:Fallback:Host=127.0.0.1",
        $"--Ion:Smtp:Fallback:Port={port}",
        "--Ion:Smtp:Fallback:Security=None",
        "--Ion:Smtp:Fallback:ConnectTimeout=00:00:05",
        "--Ion:Smtp:Fallback:CommandTimeout=00:00:05",
        .. more,
    ];

    private static object Message(string recipient, string subject) => new { action = "send", recipient, subject, body_text = "x" };

    private static async Task<string> StateAsync(IonServer ion, string relay) =>
        (await ion.HealthAsync()).GetProperty(relay).GetProperty("state").GetString()!;

    [Fact]
    public async Task PrimaryDown_TheFallbackTakesTheBacklog_EachMessageOnce_AndTheLogSaysFallback()
    {
        await using var fallback = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(Ports.Free(), Fallback(fallback.Port, "--Ion:Delivery:Concurrency=2"));

        var ids = new List<string>();
        for (var i = 0; i < 8; i++)
            ids.Add(await ion.PublishAsync(Message($"r{i}@example.com", $"backlog {i}")));

        foreach (var id in ids)
        {
            var sent = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
            // The primary could not be reached: that cost no attempt and left none in the log.
            var attempt = Assert.Single(sent.Attempts);
            Assert.Equal("sent", attempt.Outcome);
            Assert.Equal("fallback", attempt.Relay);
        }
        var received = await fallback.WaitForMessagesAsync(8, Wait);
        Assert.Equal(8, received.Select(m => m.MessageId).Distinct().Count());
        Assert.Equal(8, fallback.Count);

        var health = await ion.HealthAsync();
        Assert.Equal("down", health.GetProperty("relay").GetProperty("state").GetString());
        Assert.Equal("up", health.GetProperty("fallback").GetProperty("state").GetString());
        Assert.Equal("degraded", health.GetProperty("status").GetString());
    }

    [Fact]
    public async Task PrimaryBack_NewMailGoesToThePrimaryAgain()
    {
        var primaryPort = Ports.Free();
        await using var fallback = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(primaryPort, Fallback(fallback.Port));

        var during = await ion.PublishAsync(Message("a@example.com", "during the outage"));
        Assert.Equal("fallback", Assert.Single((await ion.WaitForStatusAsync(during, r => r.State == MessageState.Sent, Wait)).Attempts).Relay);

        // The primary's probes went on while the fallback carried the mail: it is seen back by itself.
        await using var primary = await SmtpSink.StartAsync(primaryPort);
        await IonServer.WaitUntilAsync(async () => await StateAsync(ion, "relay") == "up", "the primary seen up again");

        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
            ids.Add(await ion.PublishAsync(Message($"b{i}@example.com", $"after {i}")));
        foreach (var id in ids)
            Assert.Equal("primary", Assert.Single((await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait)).Attempts).Relay);
        await primary.WaitForMessagesAsync(3, Wait);
        Assert.Equal(3, primary.Count);
        Assert.Equal(1, fallback.Count);
        Assert.Equal("ok", (await ion.HealthAsync()).GetProperty("status").GetString());

        // ion status says which relay took each attempt.
        var shown = await IonCli.RunAsync(ion.DataDirectory, ["status", during]);
        Assert.Equal(0, shown.ExitCode);
        Assert.Matches(@"attempt 1: \S+ \S+ sent via fallback \d+ ms: 250", shown.Out);
        Assert.Contains("sent via primary", (await IonCli.RunAsync(ion.DataDirectory, ["status", ids[0]])).Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BothDown_NothingDead_NoAttemptCharged_AndDeliveredWhenOneComesBack()
    {
        var fallbackPort = Ports.Free();
        await using var ion = await IonServer.StartAsync(Ports.Free(), Fallback(fallbackPort));

        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
            ids.Add(await ion.PublishAsync(Message($"c{i}@example.com", $"waits {i}")));
        await IonServer.WaitUntilAsync(async () => await StateAsync(ion, "relay") == "down" && await StateAsync(ion, "fallback") == "down",
            "both relays reported down");
        await Task.Delay(1000, Token);   // several probes of each fail meanwhile

        foreach (var id in ids)
        {
            var waiting = await ion.StatusAsync(id);
            Assert.NotNull(waiting);
            Assert.Equal(MessageState.Queued, waiting.State);
            Assert.Equal(0, waiting.AttemptsUsed);
            Assert.Empty(waiting.Attempts);
        }
        Assert.Empty((await ion.Client.GetFromJsonAsync<List<DeadLetter>>("/v1/dead-letters", IonServer.Json, Token))!);

        await using var fallback = await SmtpSink.StartAsync(fallbackPort);
        foreach (var id in ids)
        {
            var sent = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
            Assert.Equal("fallback", Assert.Single(sent.Attempts).Relay);
        }
        Assert.Equal(3, (await fallback.WaitForMessagesAsync(3, Wait)).Count);
    }

    [Fact]
    public async Task AMessageThePrimaryDeferredNTimes_GoesThroughTheFallback_OthersStayOnThePrimary()
    {
        await using var primary = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(("greylisted@", 451, "4.7.1 Greylisted, try again later")));
        await using var fallback = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(primary.Port, Fallback(fallback.Port, "--Ion:Smtp:Fallback:AfterDeferrals=2", "--Ion:Delivery:MaxAttempts=5"));

        var deferred = await ion.PublishAsync(Message("greylisted@example.com", "deferred"));
        var sent = await ion.WaitForStatusAsync(deferred, r => r.State == MessageState.Sent, Wait);
        Assert.Equal(["primary", "primary", "fallback"], sent.Attempts.Select(a => a.Relay));
        Assert.Equal(["retry", "retry", "sent"], sent.Attempts.Select(a => a.Outcome));
        Assert.All(sent.Attempts.Take(2), a => Assert.Equal(451, a.SmtpCode));
        Assert.Equal(3, sent.AttemptsUsed);
        Assert.Equal("greylisted@example.com", ((MimeKit.MailboxAddress)Assert.Single(await fallback.WaitForMessagesAsync(1, Wait)).To.Single()).Address);
        Assert.Empty(primary.Delivered);

        // A message the primary takes is not diverted: only the deferred one went elsewhere.
        var other = await ion.PublishAsync(Message("fine@example.com", "not deferred"));
        Assert.Equal("primary", Assert.Single((await ion.WaitForStatusAsync(other, r => r.State == MessageState.Sent, Wait)).Attempts).Relay);
        Assert.Single(primary.Delivered);
        Assert.Equal(1, fallback.Count);
    }

    [Fact]
    public async Task AfterDeferralsZero_ADeferredMessageStaysOnThePrimary()
    {
        await using var primary = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipientTimes("later@", 2, 451, "4.7.1 Greylisted, try again later"));
        await using var fallback = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(primary.Port, Fallback(fallback.Port, "--Ion:Smtp:Fallback:AfterDeferrals=0"));

        var id = await ion.PublishAsync(Message("later@example.com", "greylisted twice"));
        var sent = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        Assert.Equal(["primary", "primary", "primary"], sent.Attempts.Select(a => a.Relay));
        Assert.Single(primary.Delivered);
        Assert.Equal(0, fallback.Count);
    }

    [Theory]
    [InlineData(451, "4.7.1 Rate limit exceeded, slow down", false)]
    [InlineData(421, "4.7.0 Try again later, closing connection", true)]
    public async Task AThrottlingPrimary_SlowsIonDown_ButIsNotLeftForTheFallback(int code, string text, bool closes)
    {
        await using var primary = await ScriptedSmtpServer.StartAsync(SmtpScripts.Throttle(3, reply: new ScriptedReply(code, text, CloseAfter: closes)));
        await using var fallback = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(primary.Port, Fallback(fallback.Port, "--Ion:Delivery:Concurrency=2"));

        var ids = new List<string>();
        for (var i = 0; i < 12; i++)
            ids.Add(await ion.PublishAsync(Message($"t{i}@example.com", $"throttled {i}")));
        foreach (var id in ids)
        {
            var sent = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, TimeSpan.FromSeconds(60));
            Assert.Equal("primary", Assert.Single(sent.Attempts).Relay);
        }
        var refused = primary.Transactions.Count(t => t.MailFromReply == code);
        output.WriteLine($"throttle refusals: {refused}, delivered by the primary: {primary.Delivered.Count}");
        Assert.True(refused > 0, "the primary never throttled");
        Assert.Equal(12, primary.Delivered.Count);
        Assert.Equal(0, fallback.Count);
        Assert.Equal("up", await StateAsync(ion, "fallback"));
    }

    [Fact]
    public async Task AMessagePartlyAcceptedByThePrimary_IsFinishedOnTheFallback_SendingNobodyTwice()
    {
        // The primary takes two of three recipients and keeps deferring the third; after one deferral the message's
        // next try goes through the fallback, to the third alone.
        await using var primary = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(("late@", 451, "4.2.0 Mailbox busy, try again later")));
        await using var fallback = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(primary.Port, Fallback(fallback.Port, "--Ion:Smtp:Fallback:AfterDeferrals=1"));

        var id = await ion.PublishAsync(new
        {
            action = "send", to = new[] { "a@example.com", "late@example.com" }, cc = new[] { "b@example.com" }, subject = "three", body_text = "x",
        });
        var sent = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);

        Assert.Equal(["partial", "sent"], sent.Attempts.Select(a => a.Outcome));
        Assert.Equal(["primary", "fallback"], sent.Attempts.Select(a => a.Relay));
        Assert.All(sent.Recipients, r => Assert.Equal(RecipientState.Sent, r.State));
        var first = Assert.Single(primary.Delivered);
        Assert.Equal(["a@example.com", "b@example.com"], first.AcceptedRecipients.Order());
        var second = Assert.Single(await fallback.WaitForDeliveredAsync(1, Wait));
        Assert.Equal(["late@example.com"], second.AcceptedRecipients);
        // Nothing more went anywhere: no recipient of the primary's was tried again, by either relay.
        Assert.Equal(["late@example.com"], fallback.Transactions.SelectMany(t => t.Recipients).Select(r => r.Address));
        Assert.Single(primary.Transactions);
    }

    [Theory]
    [InlineData("--Ion:Smtp:Fallback:Port=0", "Ion:Smtp:Fallback:Port must be between 1 and 65535")]
    [InlineData("--Ion:Smtp:Fallback:Security=None", "Ion:Smtp:Fallback:Security is None")]
    [InlineData("--Ion:Smtp:Fallback:Username=ion", "Ion:Smtp:Fallback:Password is not set")]
    [InlineData("--Ion:Smtp:Fallback:CommandTimeout=00:00:00", "Ion:Smtp:Fallback:CommandTimeout must be between")]
    [InlineData("--Ion:Smtp:Fallback:CertificateSha256=abc", "Ion:Smtp:Fallback:CertificateSha256 must be 64 hex digits")]
    [InlineData("--Ion:Smtp:Fallback:AfterDeferrals=-1", "Ion:Smtp:Fallback:AfterDeferrals must be 0")]
    public async Task BadFallbackSettings_FailAtStartup_NamingTheSetting(string setting, string named)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() =>
            IonServer.StartAsync(Ports.Free(), "--Ion:Smtp:Fallback:Host=smtp.example.com", "--Ion:Smtp:Fallback:Security=StartTls", setting));
        output.WriteLine(error.Message);
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        // Only the fallback's setting is wrong, and only it is named.
        Assert.DoesNotContain("Ion:Smtp:Port", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFallbackNamingThePrimaryItself_IsRefused_AndWithoutAHostTheFallbackIsOff()
    {
        var port = Ports.Free();
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() =>
            IonServer.StartAsync(port, "--Ion:Smtp:Fallback:Host=127.0.0.1", $"--Ion:Smtp:Fallback:Port={port}", "--Ion:Smtp:Fallback:Security=None"));
        Assert.Contains("Ion:Smtp:Fallback:Host and Port name the same relay as Ion:Smtp", error.Message, StringComparison.Ordinal);

        // Fallback settings without a host configure nothing: health shows no fallback, and nothing about one is checked.
        await using var ion = await IonServer.StartAsync(Ports.Free(), "--Ion:Smtp:Fallback:Port=0");
        var health = await ion.HealthAsync();
        Assert.Equal(JsonValueKind.Null, health.GetProperty("fallback").ValueKind);
    }
}
