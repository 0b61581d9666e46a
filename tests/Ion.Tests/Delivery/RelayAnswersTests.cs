using System.Net.Http.Json;
using Ion.Log;
using Ion.Queues;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Delivery;

/// <summary>
/// Whatever the relay answers after the connection is up, every message ends sent or dead in bounded time, and
/// nothing loops (issue 7, item 4); throttling slows ion down and costs no attempt (item 7); a relay that refuses
/// ion itself pauses delivery instead of burying the backlog (item 8).
/// </summary>
public class RelayAnswersTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static object Message(string recipient, string subject) =>
        new { action = "send", recipient, subject, body_text = "x" };

    [Fact]
    public async Task FourTwentyOne_AfterTheData_IsRetriedWithBackoff_ThenDeadLettered_NotLoopedForever()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.ReplyAt(ScriptedStage.EndOfData, 421, "4.3.2 Service shutting down", closeAfter: true));
        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Delivery:MaxAttempts=3");

        var id = await ion.PublishAsync(Message("a@example.com", "421 after data"));

        var dead = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Dead, Wait);
        Assert.Equal(3, dead.Attempts.Count);
        Assert.All(dead.Attempts, a => Assert.Equal(421, a.SmtpCode));
        Assert.Contains("gave up after 3 attempts", dead.LastReason, StringComparison.Ordinal);
        Assert.Contains("4.3.2 Service shutting down", dead.LastReason, StringComparison.Ordinal);
        // The backoff grew between the tries (0.2 s, then 0.4 s with jitter of at most half).
        Assert.True(dead.Attempts[2].At - dead.Attempts[1].At > dead.Attempts[1].At - dead.Attempts[0].At - TimeSpan.FromMilliseconds(150),
            $"attempts at {string.Join(", ", dead.Attempts.Select(a => a.At.ToString("HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture)))}");
        Assert.Equal(3, relay.Count(ScriptedStage.EndOfData));
        Assert.Equal("up", await ion.RelayStateAsync());
    }

    [Fact]
    public async Task StartTlsRequired_AtMail_PausesDelivery_WithTheReason_NoAttempt_NoFlapping_UntilTheRelayIsFixed()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.ReplyAt(ScriptedStage.MailFrom, 530, "5.7.0 Must issue a STARTTLS command first"));
        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Delivery:RelayProbeMaxDelay=00:00:01");

        var id = await ion.PublishAsync(Message("a@example.com", "530 at mail"));
        await IonServer.WaitUntilAsync(async () => await ion.RelayStateAsync() == "down", "the relay is reported down");

        // For three seconds the relay stays down in health (a connect-and-EHLO probe would have said "up" at once),
        // the message is only tried now and then, and it spends no attempt.
        var mailsBefore = relay.Count(ScriptedStage.MailFrom);
        List<string> states = [];
        for (var watch = System.Diagnostics.Stopwatch.StartNew(); watch.Elapsed < TimeSpan.FromSeconds(3);)
        {
            states.Add(await ion.RelayStateAsync());
            await Task.Delay(50, Token);
        }
        var tries = relay.Count(ScriptedStage.MailFrom) - mailsBefore;
        output.WriteLine($"MAIL FROM tries in 3 s: {tries}; states seen: {string.Join(",", states.Distinct())}");
        Assert.All(states, s => Assert.Equal("down", s));
        Assert.InRange(tries, 1, 8);
        var health = await ion.HealthAsync();
        Assert.Contains("530", health.GetProperty("relay").GetProperty("error").GetString(), StringComparison.Ordinal);
        var waiting = await ion.StatusAsync(id);
        Assert.Equal(MessageState.Queued, waiting!.State);
        Assert.Empty(waiting.Attempts);

        relay.Script = null;

        await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        Assert.Single(relay.Delivered);
        await IonServer.WaitUntilAsync(async () => await ion.RelayStateAsync() == "up", "the relay is reported up again");
    }

    [Fact]
    public async Task SenderRefused_PausesDelivery_KeepsTheMessagesQueued()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.ReplyAt(ScriptedStage.MailFrom, 553, "5.7.1 <ion@test.example>: Sender address rejected: not owned by user"));
        await using var ion = await IonServer.StartAsync(relay.Port);

        var ids = new List<string>();
        for (var i = 0; i < 4; i++)
            ids.Add(await ion.PublishAsync(Message($"r{i}@d{i}.example", $"sender refused {i}")));
        await IonServer.WaitUntilAsync(async () => await ion.RelayStateAsync() == "down", "the relay is reported down");
        await Task.Delay(1000, Token);

        foreach (var id in ids)
            Assert.Equal(MessageState.Queued, (await ion.StatusAsync(id))!.State);
        Assert.Equal(0, (await ion.Services.GetRequiredService<IMessageQueue>().CountAsync(Token)).Dead);

        relay.Script = null;
        foreach (var id in ids)
            await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
    }

    [Fact]
    public async Task SameRefusalForEveryRecipient_IsTakenAsTheRelayRefusingIon_PausesDelivery_AndBuriesNothing()
    {
        // A relay that refuses ion with a policy reply that says nothing of why: every RCPT gets it, whoever it is for.
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.ReplyAt(ScriptedStage.RcptTo, 554, "5.7.1 Service unavailable"));
        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Delivery:RelayProbeBaseDelay=00:00:00.500", "--Ion:Delivery:RelayProbeMaxDelay=00:00:01");
        var queue = ion.Services.GetRequiredService<IMessageQueue>();

        var ids = new List<string>();
        for (var i = 0; i < 6; i++)
            ids.Add(await ion.PublishAsync(Message($"r{i}@d{i % 3}.example", $"blocked {i}")));
        await IonServer.WaitUntilAsync(async () => await ion.RelayStateAsync() == "down", "the relay is reported down");
        // The two messages dead-lettered before the streak was recognised come back to wait with the others.
        await IonServer.WaitUntilAsync(async () => (await queue.CountAsync(Token)).Dead == 0, "no dead letters");
        var health = await ion.HealthAsync();
        Assert.Contains("5.7.1 Service unavailable", health.GetProperty("relay").GetProperty("error").GetString(), StringComparison.Ordinal);

        relay.Script = null;

        foreach (var id in ids)
            await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        Assert.Equal(6, relay.Delivered.Count);
        Assert.Empty(await ion.Services.GetRequiredService<IDeliveryLog>().ListDeadLettersAsync(new DeadLetterQuery(), Token));
    }

    [Fact]
    public async Task ClientHostBlocked_PausesAtOnce_EvenForOneDomain()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.ReplyAt(ScriptedStage.RcptTo, 554, "5.7.1 Client host [127.0.0.1] blocked using zen.example"));
        await using var ion = await IonServer.StartAsync(relay.Port);

        var ids = new List<string>();
        for (var i = 0; i < 4; i++)
            ids.Add(await ion.PublishAsync(Message($"r{i}@example.com", $"blocked {i}")));
        await IonServer.WaitUntilAsync(async () => await ion.RelayStateAsync() == "down", "the relay is reported down");
        await Task.Delay(1000, Token);

        Assert.Equal(0, (await ion.Services.GetRequiredService<IMessageQueue>().CountAsync(Token)).Dead);
        relay.Script = null;
        foreach (var id in ids)
            await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
    }

    [Fact]
    public async Task BadAddresses_InARow_AreTheirOwn_AndAreDeadLettered_WithoutPausingTheRelay()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(("nobody", 550, "5.1.1 No such user")));
        await using var ion = await IonServer.StartAsync(relay.Port);

        var ids = new List<string>();
        for (var i = 0; i < 4; i++)
            ids.Add(await ion.PublishAsync(Message($"nobody{i}@d{i}.example", $"bad {i}")));
        var good = await ion.PublishAsync(Message("someone@example.com", "good"));

        foreach (var id in ids)
            await ion.WaitForStatusAsync(id, r => r.State == MessageState.Dead, Wait);
        await ion.WaitForStatusAsync(good, r => r.State == MessageState.Sent, Wait);
        Assert.Equal("up", await ion.RelayStateAsync());
    }

    [Fact]
    public async Task Throttling_SlowsIonDown_ChargesNoAttempt_ShowsInHealth_AndEverythingIsDelivered()
    {
        // SES's answer beyond 4 messages a second.
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.Throttle(4));
        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Delivery:Concurrency=2", "--Ion:Delivery:MaxAttempts=2");

        var ids = new List<string>();
        for (var i = 0; i < 24; i++)
            ids.Add(await ion.PublishAsync(Message($"r{i}@example.com", $"throttled {i}")));
        await IonServer.WaitUntilAsync(async () => await ion.RelayStateAsync() == "throttled", "health says throttled");
        var health = await ion.HealthAsync();
        var rate = health.GetProperty("relay").GetProperty("rate_per_second").GetDouble();
        output.WriteLine($"rate while throttled: {rate:F2}/s");
        Assert.InRange(rate, 0.01, 10);

        foreach (var id in ids)
        {
            var sent = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, TimeSpan.FromSeconds(60));
            // Throttled tries are neither recorded nor counted: the one attempt is the one that went through.
            Assert.Equal("sent", Assert.Single(sent.Attempts).Outcome);
        }
        var refused = relay.Transactions.Count(t => t.MailFromReply == 454);
        output.WriteLine($"throttle refusals: {refused}, delivered: {relay.Delivered.Count}");
        Assert.True(refused > 0, "the relay never throttled");
        Assert.Equal(24, relay.Delivered.Count);
    }

    [Fact]
    public async Task Throttled_MessagesStayWithTheirSlot_NotTakenOffTheQueueAgainAndAgain()
    {
        // Every receive counts towards SQS's maxReceiveCount: slowing down must not spend them.
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.Throttle(3));
        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Delivery:Concurrency=2", "--Ion:Delivery:BatchSize=3");
        var ids = new List<string>();
        for (var i = 0; i < 12; i++)
            ids.Add(await ion.PublishAsync(Message($"r{i}@example.com", $"slow {i}")));

        // Until every message is sent, no waiting message was ever received more than once.
        var most = 0;
        using (var shell = Sqlite3Shell.Start(Path.Combine(ion.DataDirectory, "ion.db")))
        {
            foreach (var id in ids)
            {
                await IonServer.WaitUntilAsync(async () =>
                {
                    most = Math.Max(most, int.Parse((await shell.RunAsync("SELECT coalesce(max(receive_count), 0) FROM queue;", Token))[0], System.Globalization.CultureInfo.InvariantCulture));
                    return (await ion.StatusAsync(id))?.State == MessageState.Sent;
                }, $"{id} sent", TimeSpan.FromSeconds(60));
            }
        }
        output.WriteLine($"throttle refusals: {relay.Transactions.Count(t => t.MailFromReply == 454)}; most receives of a message: {most}");
        Assert.True(relay.Transactions.Count(t => t.MailFromReply == 454) >= 3, "the relay hardly throttled");
        Assert.Equal(1, most);
    }

    [Fact]
    public async Task MailboxFull_552_5_2_2_IsRetried_NotDeadLetteredAtOnce()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipientTimes("full@example.com", 1, 552, "5.2.2 Mailbox full"));
        await using var ion = await IonServer.StartAsync(relay.Port);

        var id = await ion.PublishAsync(Message("full@example.com", "mailbox full"));

        var sent = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        Assert.Equal(["retry", "sent"], sent.Attempts.Select(a => a.Outcome));
    }

    [Fact]
    public async Task FourXxReply_WithAFiveEnhancedCode_FollowsTheBasicCode_AndIsRetried()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipientTimes("odd@example.com", 1, 450, "5.2.1 Mailbox disabled for now"));
        await using var ion = await IonServer.StartAsync(relay.Port);

        var id = await ion.PublishAsync(Message("odd@example.com", "450 5.2.1"));

        var sent = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        Assert.Equal(["retry", "sent"], sent.Attempts.Select(a => a.Outcome));
    }

    [Fact]
    public async Task DeadLetters_CanBeListedAndRedriven_ByFailureClassAndDomain()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(("x@gone.example", 550, "5.1.1 No such user"), ("y@other.example", 550, "5.1.1 No such user")));
        // The relay refuses with "5.1.1 no such user" and the test redrives: the mailbox counts as fixed, not suppressed.
        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Suppression:Enabled=false");
        var gone = await ion.PublishAsync(Message("x@gone.example", "gone"));
        var other = await ion.PublishAsync(Message("y@other.example", "other"));
        await ion.WaitForStatusAsync(gone, r => r.State == MessageState.Dead, Wait);
        await ion.WaitForStatusAsync(other, r => r.State == MessageState.Dead, Wait);

        var listed = await ion.Client.GetFromJsonAsync<List<DeadLetter>>("/v1/dead-letters?failure_class=permanent&domain=gone.example", IonServer.Json, Token);
        Assert.Equal([gone], listed!.Select(d => d.Id));

        relay.Script = null;
        using var response = await ion.Client.PostAsJsonAsync("/v1/dead-letters/redrive", new { domain = "gone.example" }, IonServer.Json, Token);
        response.EnsureSuccessStatusCode();

        await ion.WaitForStatusAsync(gone, r => r.State == MessageState.Sent, Wait);
        Assert.Equal(MessageState.Dead, (await ion.StatusAsync(other))!.State);
    }
}
