using System.Net.Http.Json;
using Ion.Log;
using Ion.Messages;
using Ion.Queues;
using Ion.Tests.Fixtures;
using MimeKit;

namespace Ion.Tests.Delivery;

/// <summary>The whole path against a real SMTP server: HTTP publish → SQLite queue → worker → smtp-sink.</summary>
public class DeliveryTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task OriginalMessage_IsDelivered_WithBothParts_UnicodeSubject_AndStableMessageId()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(sink.Port);

        var id = await ion.PublishAsync(new
        {
            action = "send",
            recipient = "alice@example.com",
            subject = "Grüße ✓ from ion",
            body_text = "plain part\n.line starting with a dot",
            body_html = "<p>html part</p>",
        });

        var received = Assert.Single(await sink.WaitForMessagesAsync(1, Wait));
        Assert.Equal("Grüße ✓ from ion", received.Subject);
        Assert.Equal("plain part\n.line starting with a dot", received.TextBody!.ReplaceLineEndings("\n").TrimEnd('\n'));
        Assert.Contains("<p>html part</p>", received.HtmlBody, StringComparison.Ordinal);
        Assert.Equal(MessageIds.MessageIdHeader(id, "test.example"), received.MessageId);
        Assert.Equal("ion@test.example", ((MailboxAddress)received.From.Single()).Address);
        Assert.Equal("alice@example.com", ((MailboxAddress)received.To.Single()).Address);

        var status = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent);
        var attempt = Assert.Single(status.Attempts);
        Assert.Equal("sent", attempt.Outcome);
        Assert.Equal(250, attempt.SmtpCode);
    }

    [Fact]
    public async Task RejectedRecipient_GoesToDeadLetterQueue_AfterOneAttempt_WithTheCode()
    {
        await using var sink = await SmtpSink.StartAsync("-B", "550 5.1.1 No such user", "-f", "RCPT");
        await using var ion = await IonServer.StartAsync(sink.Port);

        var id = await ion.PublishAsync(new { action = "send", recipient = "nobody@example.com", subject = "Hi", body_text = "x" });

        var status = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Dead, Wait);
        var attempt = Assert.Single(status.Attempts);
        Assert.Equal(550, attempt.SmtpCode);
        var dead = await ion.Client.GetFromJsonAsync<List<DeadLetter>>("/v1/dead-letters", IonServer.Json, Token);
        var letter = Assert.Single(dead!);
        Assert.Equal(id, letter.Id);
        Assert.Equal(1, letter.Attempts);
        Assert.Contains("550", letter.Reason, StringComparison.Ordinal);
        Assert.Contains("5.1.1 No such user", letter.Reason, StringComparison.Ordinal);
        Assert.Contains("nobody@example.com", letter.Body, StringComparison.Ordinal);
        Assert.Equal(0, sink.Count);
    }

    [Fact]
    public async Task TransientFailure_IsRetriedWithBackoff_ThenSent()
    {
        await using var sink = await SmtpSink.StartAsync("-r", "RCPT");
        await using var ion = await IonServer.StartAsync(sink.Port);

        var id = await ion.PublishAsync(new { action = "send", recipient = "bob@example.com", subject = "Hi", body_text = "x" });
        var retrying = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Retrying && r.Attempts.Count >= 2, Wait);
        Assert.All(retrying.Attempts, a => Assert.Equal(450, a.SmtpCode));

        await sink.RestartAsync();

        var sent = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        Assert.True(sent.Attempts.Count >= 3, $"expected at least 2 failed attempts and one success, got {sent.Attempts.Count}");
        Assert.Equal("sent", sent.Attempts[^1].Outcome);
        Assert.Single(await sink.WaitForMessagesAsync(1, Wait));
    }

    [Fact]
    public async Task TransientFailure_WithARetryHint_WaitsAsLongAsTheRelayAsked_NotTheShorterBackoff()
    {
        // The backoff would retry within 0.2 s; the relay asks for 2 s, which lies inside [base, max].
        await using var sink = await SmtpSink.StartAsync("-b", "451 4.7.1 Greylisted, please try again in 2 seconds", "-r", "RCPT");
        await using var ion = await IonServer.StartAsync(sink.Port, "--Ion:Delivery:RetryMaxDelay=00:00:05");

        var id = await ion.PublishAsync(new { action = "send", recipient = "bob@example.com", subject = "Hi", body_text = "x" });

        var retried = await ion.WaitForStatusAsync(id, r => r.Attempts.Count >= 2, Wait);
        var gap = retried.Attempts[1].At - retried.Attempts[0].At;
        Assert.True(gap >= TimeSpan.FromSeconds(2), $"the second attempt came {gap} after the first; the relay asked for 2 s");
        Assert.All(retried.Attempts, a => Assert.Equal(451, a.SmtpCode));
    }

    [Fact]
    public async Task TransientFailure_AfterMaxAttempts_GoesToDeadLetterQueue_WithTheLastReason()
    {
        await using var sink = await SmtpSink.StartAsync("-b", "451 4.7.1 Greylisted, try later", "-r", "RCPT");
        await using var ion = await IonServer.StartAsync(sink.Port, "--Ion:Delivery:MaxAttempts=3");

        var id = await ion.PublishAsync(new { action = "send", recipient = "bob@example.com", subject = "Hi", body_text = "x" });

        var dead = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Dead, Wait);
        Assert.Equal(3, dead.Attempts.Count);
        Assert.Contains("gave up after 3 attempts", dead.LastReason, StringComparison.Ordinal);
        Assert.Contains("4.7.1 Greylisted", dead.LastReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RelayDown_SpendsNoAttempts_AndDeliversByItselfWhenItComesBack()
    {
        var port = Ports.Free();
        await using var ion = await IonServer.StartAsync(port);

        var id = await ion.PublishAsync(new { action = "send", recipient = "carol@example.com", subject = "Hi", body_text = "x" });
        await WaitUntilAsync(async () => (await HealthAsync(ion)).GetProperty("relay").GetProperty("state").GetString() == "down");
        await Task.Delay(1000, Token);   // several probes fail meanwhile

        var waiting = await ion.StatusAsync(id);
        Assert.NotNull(waiting);
        Assert.Equal(MessageState.Queued, waiting.State);
        Assert.Empty(waiting.Attempts);
        Assert.Equal("degraded", (await HealthAsync(ion)).GetProperty("status").GetString());

        await using var sink = await SmtpSink.StartAsync(port);

        var sent = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        Assert.Single(sent.Attempts);
        Assert.Single(await sink.WaitForMessagesAsync(1, Wait));
        Assert.Equal("up", (await HealthAsync(ion)).GetProperty("relay").GetProperty("state").GetString());
    }

    [Fact]
    public async Task RelayDown_IsProbedByConnecting_TheWaitingMessageIsNotTakenAgainAndAgain()
    {
        // Every receive counts towards SQS's maxReceiveCount: an outage must not spend them.
        var port = Ports.Free();
        await using var ion = await IonServer.StartAsync(port);

        await ion.PublishAsync(new { action = "send", recipient = "carol@example.com", subject = "Hi", body_text = "x" });
        await WaitUntilAsync(async () => (await HealthAsync(ion)).GetProperty("relay").GetProperty("state").GetString() == "down");
        await Task.Delay(2000, Token);   // probes every 0.1–0.3 s meanwhile

        using var shell = Sqlite3Shell.Start(Path.Combine(ion.DataDirectory, "ion.db"));
        Assert.Equal(["1"], await shell.RunAsync("SELECT receive_count FROM queue;", Token));
    }

    [Fact]
    public async Task UnreadableMessage_IsDeadLettered_AndDoesNotBlockTheMessagesBehindIt()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(sink.Port, "--Ion:Delivery:BatchSize=5");
        var queue = ion.Services.GetRequiredService<IMessageQueue>();

        // As if another publisher put garbage straight on the queue (SNS/SQS will).
        await queue.EnqueueAsync(
        [
            new OutgoingMessage("garbage-1", "{not json"),
            new OutgoingMessage("garbage-2", "{\"action\":\"send\",\"recipient\":\"x@example.com\\r\\nBcc: victim@example.com\",\"subject\":\"s\",\"body_text\":\"b\"}"),
            new OutgoingMessage("garbage-3", new string('[', 100_000)),
        ], Token);
        var good = await ion.PublishAsync(new { action = "send", recipient = "dave@example.com", subject = "after the garbage", body_text = "x" });

        await ion.WaitForStatusAsync(good, r => r.State == MessageState.Sent, Wait);
        foreach (var bad in new[] { "garbage-1", "garbage-2", "garbage-3" })
        {
            var status = await ion.WaitForStatusAsync(bad, r => r.State == MessageState.Dead, Wait);
            Assert.StartsWith("invalid: ", status.LastReason, StringComparison.Ordinal);
        }
        var letters = await ion.Services.GetRequiredService<IDeliveryLog>().ListDeadLettersAsync(new DeadLetterQuery(10), Token);
        Assert.Equal(3, letters.Count);
        Assert.Contains(letters, l => l.Id == "garbage-1" && l.Body == "{not json");
        var received = Assert.Single(await sink.WaitForMessagesAsync(1, Wait));
        Assert.Equal("after the garbage", received.Subject);
    }

    [Fact]
    public async Task DeadLetters_AreRedriven_ByTheApi_AndByTheRedriveAction()
    {
        await using var sink = await SmtpSink.StartAsync("-B", "550 5.1.1 No such user", "-f", "RCPT");
        // The relay refuses with "5.1.1 no such user" and the test redrives: the mailbox counts as fixed, not suppressed.
        await using var ion = await IonServer.StartAsync(sink.Port, "--Ion:Suppression:Enabled=false");
        var first = await ion.PublishAsync(new { action = "send", id = "first", recipient = "a@example.com", subject = "1", body_text = "x" });
        var second = await ion.PublishAsync(new { action = "send", id = "second", recipient = "b@example.com", subject = "2", body_text = "x" });
        await ion.WaitForStatusAsync(first, r => r.State == MessageState.Dead, Wait);
        await ion.WaitForStatusAsync(second, r => r.State == MessageState.Dead, Wait);
        await sink.RestartAsync();

        using var response = await ion.Client.PostAsJsonAsync("/v1/dead-letters/redrive", new { ids = new[] { "first" } }, Token);
        response.EnsureSuccessStatusCode();
        Assert.Contains("\"count\":1", await response.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);
        var sent = await ion.WaitForStatusAsync(first, r => r.State == MessageState.Sent, Wait);
        Assert.Equal(2, sent.Attempts.Count);
        Assert.Equal("rejected", sent.Attempts[0].Outcome);
        Assert.Equal("sent", sent.Attempts[1].Outcome);
        Assert.Equal(MessageState.Dead, (await ion.StatusAsync(second))!.State);

        // The original's own redrive message, published like any other.
        await ion.PublishAsync(new { action = "redrive" });
        await ion.WaitForStatusAsync(second, r => r.State == MessageState.Sent, Wait);
        Assert.Equal(2, (await sink.WaitForMessagesAsync(2, Wait)).Count);
        Assert.Empty(await ion.Services.GetRequiredService<IDeliveryLog>().ListDeadLettersAsync(new DeadLetterQuery(10), Token));
        Assert.Equal(0, (await ion.Services.GetRequiredService<IMessageQueue>().CountAsync(Token)).Dead);
    }

    [Fact]
    public async Task MessageWithAnIdAlreadySent_IsNotSentAgain()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(sink.Port);
        var message = new { action = "send", id = "order-42-confirmation", recipient = "a@example.com", subject = "Order 42", body_text = "x" };

        await ion.PublishAsync(message);
        await ion.WaitForStatusAsync("order-42-confirmation", r => r.State == MessageState.Sent, Wait);
        await ion.PublishAsync(message);
        await WaitUntilAsync(async () => (await ion.Services.GetRequiredService<IMessageQueue>().CountAsync(Token)) is { Ready: 0, Delayed: 0 });

        Assert.Equal(1, sink.Count);
        Assert.Single((await ion.StatusAsync("order-42-confirmation"))!.Attempts);
    }

    [Fact]
    public async Task RateLimit_SpacesSendsOut_AcrossAllConnections()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(sink.Port, "--Ion:Delivery:RatePerSecond=10", "--Ion:Delivery:Concurrency=3");
        var ids = new List<string>();
        for (var i = 0; i < 25; i++)
            ids.Add(await ion.PublishAsync(new { action = "send", recipient = "a@example.com", subject = $"rate {i}", body_text = "x" }));

        await sink.WaitForMessagesAsync(25, Wait);

        // 25 messages at 10/s with a burst of at most one period's tokens: the sends span at least ~2 s.
        var sentAt = new List<DateTimeOffset>();
        foreach (var id in ids)
            sentAt.Add((await ion.StatusAsync(id))!.Attempts.Single().At);
        var span = sentAt.Max() - sentAt.Min();
        Assert.True(span >= TimeSpan.FromSeconds(2), $"25 sends at 10/s took only {span}");
    }

    [Fact]
    public async Task Shutdown_FinishesWhatIsInFlight_AndGivesBackTheRest()
    {
        // The relay holds each end-of-data reply for 1 s, and ion stops once the first transaction has begun: the
        // worker is mid-message then.
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.Slow(ScriptedStage.EndOfData, TimeSpan.FromSeconds(1)));
        var ion = await IonServer.StartAsync(relay.Port, "--Ion:Delivery:BatchSize=10", "--Ion:Delivery:VisibilityTimeout=00:10:00");
        var queue = ion.Services.GetRequiredService<IMessageQueue>();
        // One transaction, so the worker takes all five in one batch.
        var bodies = Enumerable.Range(0, 5)
            .Select(i => System.Text.Json.JsonSerializer.Serialize(new { action = "send", recipient = "a@example.com", subject = $"shutdown {i}", body_text = "x" }))
            .ToList();
        Assert.Empty((await ion.Services.GetRequiredService<Publisher>().PublishAsync(bodies, Token)).Errors);
        await WaitUntilAsync(async () => (await queue.CountAsync(Token)).Delayed == 5);
        await relay.WaitForTransactionsAsync(1, Wait);

        await ion.App.StopAsync(Token);

        // Nothing is left hidden for the ten-minute visibility timeout: the message being sent finished, the
        // others are visible again for the next start.
        var counts = await queue.CountAsync(Token);
        var delivered = relay.Delivered.Count;
        Assert.Equal(0, counts.Delayed);
        Assert.Equal(5 - delivered, counts.Ready);
        Assert.InRange(delivered, 1, 4);
        await ion.DisposeAsync();
    }

    [Fact]
    public async Task DeliveryDisabled_AcceptsAndKeeps_ButSendsNothing()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(sink.Port, "--Ion:Delivery:Enabled=false");

        var id = await ion.PublishAsync(new { action = "send", recipient = "a@example.com", subject = "kept", body_text = "x" });
        await Task.Delay(500, Token);

        Assert.Equal(MessageState.Queued, (await ion.StatusAsync(id))!.State);
        Assert.Equal(1, (await ion.Services.GetRequiredService<IMessageQueue>().CountAsync(Token)).Ready);
        Assert.Equal(0, sink.Count);
    }

    private static async Task<System.Text.Json.JsonElement> HealthAsync(IonServer ion) =>
        await ion.Client.GetFromJsonAsync<System.Text.Json.JsonElement>("/healthz", Token);

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = Environment.TickCount64 + (long)Wait.TotalMilliseconds;
        while (!await condition())
        {
            if (Environment.TickCount64 > deadline)
                throw new TimeoutException("condition not met in time");
            await Task.Delay(50, Token);
        }
    }
}
