using System.Net;
using System.Net.Sockets;
using System.Text;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace Ion.Tests.Fixtures;

/// <summary>The fixture against MailKit's real SmtpClient, so delivery tests can trust what it scripts and records.</summary>
public class ScriptedSmtpServerTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Message_ToThreeRecipients_IsRecorded_WithEnvelopeAndBody()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync();
        using var client = await ConnectAsync(smtp);

        await client.SendAsync(Message("a@example.com", "b@example.com", "c@example.com"), Token);

        var sent = Assert.Single(await smtp.WaitForDeliveredAsync(1, Wait));
        Assert.Equal("ion@test.example", sent.Sender);
        Assert.Equal(["a@example.com", "b@example.com", "c@example.com"], sent.Recipients.Select(r => r.Address));
        Assert.All(sent.Recipients, r => Assert.Equal(250, r.ReplyCode));
        Assert.Equal("RCPT TO:<a@example.com>", sent.Recipients[0].Line);
        Assert.Equal(250, sent.EndOfDataReply);
        Assert.Contains("BODY=8BITMIME", sent.MailParameters);
        var received = sent.ParseMessage();
        Assert.Equal("Grüße", received.Subject);
        // MailKit dot-stuffs the line on the wire; the server undoes it.
        Assert.Equal("Hello\n.a line starting with a dot\nbye ✓", received.TextBody!.ReplaceLineEndings("\n").TrimEnd('\n'));
        Assert.Equal(1, smtp.Connections);
        Assert.Empty(smtp.Errors);
    }

    [Fact]
    public async Task Pipelining_SendsMailAndRcptWithoutWaiting_OnlyWhenAdvertised()
    {
        await using var pipelining = await ScriptedSmtpServer.StartAsync();
        await using var lockstep = await ScriptedSmtpServer.StartAsync(extensions: ScriptedExtensions.Default with { Pipelining = false });

        foreach (var smtp in new[] { pipelining, lockstep })
        {
            using var client = await ConnectAsync(smtp);
            await client.SendAsync(Message("a@example.com", "b@example.com"), Token);
        }

        // MailKit 4.18 batches MAIL FROM and every RCPT TO, then waits for all their replies before DATA.
        var batched = pipelining.Exchanges.Where(e => e.Pipelined).Select(e => e.Stage);
        Assert.Equal([ScriptedStage.MailFrom, ScriptedStage.RcptTo], batched);
        Assert.DoesNotContain(lockstep.Exchanges, e => e.Pipelined);
        Assert.Single(pipelining.Delivered);
        Assert.Single(lockstep.Delivered);
    }

    [Fact]
    public async Task RefusedRecipient_IsRecorded_WithItsReply()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(("nobody@", 550, "5.1.1 No such user")));
        using var client = await ConnectAsync(smtp);

        var error = await Assert.ThrowsAsync<SmtpCommandException>(
            () => client.SendAsync(Message("a@example.com", "nobody@example.com", "c@example.com"), Token));

        Assert.Equal(SmtpErrorCode.RecipientNotAccepted, error.ErrorCode);
        Assert.Equal(SmtpStatusCode.MailboxUnavailable, error.StatusCode);
        Assert.Equal("nobody@example.com", error.Mailbox?.Address);
        Assert.Equal("5.1.1 No such user", error.Message);
        // A refusal leaves the session usable: MailKit sends RSET and stays connected.
        Assert.True(client.IsConnected);
        var attempt = Assert.Single(smtp.Transactions);
        Assert.Equal([250, 550, 250], attempt.Recipients.Select(r => r.ReplyCode));
        Assert.Equal("5.1.1 No such user", attempt.Recipients[1].ReplyText);
        Assert.Null(attempt.DataReply);
        Assert.False(attempt.Delivered);
        Assert.Equal(1, smtp.Count(ScriptedStage.Rset));
    }

    [Fact]
    public async Task RefusedRecipient_WithACollectingClient_TheOthersStillGetTheMessage()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(("nobody@", 550, "5.1.1 No such user")));
        using var client = await ConnectAsync(smtp, new CollectingSmtpClient());

        await client.SendAsync(Message("a@example.com", "nobody@example.com", "c@example.com"), Token);

        Assert.Equal(["nobody@example.com 550"], ((CollectingSmtpClient)client).Refused);
        var sent = Assert.Single(smtp.Delivered);
        Assert.Equal(["a@example.com", "c@example.com"], sent.AcceptedRecipients);
    }

    [Fact]
    public async Task EveryRecipientRefused_WithACollectingClient_IsMessageNotAccepted_WithoutData()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(("nobody", 550, "5.1.1 No such user")));
        using var client = await ConnectAsync(smtp, new CollectingSmtpClient());

        var error = await Assert.ThrowsAsync<SmtpCommandException>(
            () => client.SendAsync(Message("nobody@example.com", "nobody2@example.com"), Token));

        // MailKit makes this one up itself (no server said 554) and never sends DATA.
        Assert.Equal(SmtpErrorCode.MessageNotAccepted, error.ErrorCode);
        Assert.Equal(SmtpStatusCode.TransactionFailed, error.StatusCode);
        Assert.Equal(0, smtp.Count(ScriptedStage.Data));
    }

    [Fact]
    public async Task ClosingReplyAtEndOfData_MakesMailKitThrow_AndClosesTheConnection()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync(
            SmtpScripts.ReplyAt(ScriptedStage.EndOfData, 421, "4.7.0 Try again later, closing connection", closeAfter: true));
        using var client = await ConnectAsync(smtp);

        var error = await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(Message("a@example.com"), Token));

        Assert.Equal(SmtpErrorCode.MessageNotAccepted, error.ErrorCode);
        Assert.Equal(SmtpStatusCode.ServiceNotAvailable, error.StatusCode);
        // MailKit disconnects on any 421 itself.
        Assert.False(client.IsConnected);
        var attempt = Assert.Single(smtp.Transactions);
        Assert.Equal(421, attempt.EndOfDataReply);
        Assert.False(attempt.Delivered);
        Assert.False(attempt.Message.IsEmpty);
        await smtp.WaitUntilAsync(() => smtp.Transactions[0].EndedAt is not null, Wait, "the transaction to end");
        Assert.Empty(smtp.Errors);
    }

    [Fact]
    public async Task DroppedConnection_AtEndOfData_IsAProtocolException()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync(c => c.Stage == ScriptedStage.EndOfData ? ScriptedReply.Drop : null);
        using var client = await ConnectAsync(smtp);

        await Assert.ThrowsAsync<SmtpProtocolException>(() => client.SendAsync(Message("a@example.com"), Token));

        Assert.False(client.IsConnected);
        Assert.Equal(0, Assert.Single(smtp.Transactions).EndOfDataReply);
    }

    [Fact]
    public async Task SmtpUtf8_IsAdvertisedByDefault_AndDeclaredForUnicodeAddresses()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync();
        using var client = await ConnectAsync(smtp);
        Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.UTF8));

        await client.SendAsync(Message("josé@example.com", "用户@例子.广告"), Token);
        await client.SendAsync(Message("ascii@example.com"), Token);

        var delivered = await smtp.WaitForDeliveredAsync(2, Wait);
        Assert.True(delivered[0].HasParameter("SMTPUTF8"));
        Assert.Equal(["josé@example.com", "用户@例子.广告"], delivered[0].Recipients.Select(r => r.Address));
        // MailKit declares SMTPUTF8 only for a message that needs it.
        Assert.False(delivered[1].HasParameter("SMTPUTF8"));
    }

    [Fact]
    public async Task WithoutSmtpUtf8_AUnicodeMailbox_IsRefusedAsPostfixWould()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync(extensions: ScriptedExtensions.Default with { SmtpUtf8 = false });
        using var client = await ConnectAsync(smtp);
        Assert.False(client.Capabilities.HasFlag(SmtpCapabilities.UTF8));

        // MailKit sends a unicode local part raw, undeclared; only the domain becomes punycode.
        var error = await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(Message("josé@例子.广告"), Token));

        Assert.Equal(SmtpErrorCode.RecipientNotAccepted, error.ErrorCode);
        Assert.Equal(553, (int)error.StatusCode);
        var refused = Assert.Single(Assert.Single(smtp.Transactions).Recipients);
        Assert.Equal("josé@xn--fsqu00a.xn--4rr70v", refused.Address);
        Assert.Equal(553, refused.ReplyCode);
    }

    [Fact]
    public async Task Delay_MakesTheReplySlow()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync(SmtpScripts.Slow(ScriptedStage.MailFrom, TimeSpan.FromMilliseconds(400)));
        using var client = await ConnectAsync(smtp);

        var started = Environment.TickCount64;
        await client.SendAsync(Message("a@example.com"), Token);

        Assert.InRange(Environment.TickCount64 - started, 380, 10_000);
        Assert.Single(smtp.Delivered);
    }

    [Fact]
    public async Task Delay_BeyondTheClientTimeout_IsATimeoutException_AndDisconnects()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync(SmtpScripts.Slow(ScriptedStage.EndOfData, TimeSpan.FromSeconds(30)));
        using var client = await ConnectAsync(smtp);
        client.Timeout = 300;

        await Assert.ThrowsAsync<TimeoutException>(() => client.SendAsync(Message("a@example.com"), Token));

        Assert.False(client.IsConnected);
        // The message arrived; only the answer was late, so the relay might still deliver it: a duplicate risk.
        Assert.False(Assert.Single(smtp.Transactions).Message.IsEmpty);
    }

    [Fact]
    public async Task Throttle_RefusesTransactionsBeyondTheLimit_UntilTheWindowPasses()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync(SmtpScripts.Throttle(2, TimeSpan.FromSeconds(1)));
        using var client = await ConnectAsync(smtp);

        await client.SendAsync(Message("a@example.com"), Token);
        await client.SendAsync(Message("b@example.com"), Token);
        var error = await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(Message("c@example.com"), Token));

        Assert.Equal(SmtpErrorCode.SenderNotAccepted, error.ErrorCode);
        Assert.Equal(454, (int)error.StatusCode);
        Assert.Equal("4.7.0 Throttling failure: Maximum sending rate exceeded.", error.Message);
        Assert.Equal([250, 250, 454], smtp.Transactions.Select(t => t.MailFromReply));

        await Task.Delay(TimeSpan.FromMilliseconds(1100), Token);
        await client.SendAsync(Message("c@example.com"), Token);
        Assert.Equal(3, smtp.Delivered.Count);
    }

    [Fact]
    public async Task RecipientRefusedOnce_IsAcceptedOnTheNextTry()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipientTimes("full@example.com", 1, 452, "4.2.2 Mailbox full"));

        using (var first = await ConnectAsync(smtp))
        {
            var error = await Assert.ThrowsAsync<SmtpCommandException>(() => first.SendAsync(Message("full@example.com"), Token));
            Assert.Equal(SmtpErrorCode.RecipientNotAccepted, error.ErrorCode);
            Assert.Equal(SmtpStatusCode.InsufficientStorage, error.StatusCode);
        }
        using (var second = await ConnectAsync(smtp))
            await second.SendAsync(Message("full@example.com"), Token);

        Assert.Equal([452, 250], smtp.Transactions.Select(t => Assert.Single(t.Recipients).ReplyCode));
        Assert.Single(smtp.Delivered);
        Assert.Equal(2, smtp.Connections);
    }

    [Fact]
    public async Task ReplacedScript_AppliesFromTheNextCommand()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync(SmtpScripts.ReplyAt(ScriptedStage.RcptTo, 451, "4.3.0 relay broken"));
        using var client = await ConnectAsync(smtp);
        await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(Message("a@example.com"), Token));

        smtp.Script = null;
        await client.SendAsync(Message("a@example.com"), Token);

        Assert.Single(smtp.Delivered);
    }

    [Fact]
    public async Task ScriptsCombined_FirstAnswerWins()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync(SmtpScripts.First(
            c => c.Stage == ScriptedStage.RcptTo && c.Argument.StartsWith("vip@", StringComparison.Ordinal) ? c.Default : null,
            SmtpScripts.ReplyAt(ScriptedStage.RcptTo, 550, "5.7.1 Relaying denied")));
        using var client = await ConnectAsync(smtp, new CollectingSmtpClient());

        await client.SendAsync(Message("vip@example.com", "other@example.com"), Token);

        Assert.Equal(["vip@example.com"], Assert.Single(smtp.Delivered).AcceptedRecipients);
    }

    [Fact]
    public async Task ThrowingScript_Answers451_AndIsRecordedAsAnError()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync(
            c => c.Stage == ScriptedStage.RcptTo ? throw new InvalidOperationException("bug in the test's script") : null);
        using var client = await ConnectAsync(smtp);

        var error = await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(Message("a@example.com"), Token));

        Assert.Equal(451, (int)error.StatusCode);
        Assert.IsType<InvalidOperationException>(Assert.Single(smtp.Errors));
    }

    [Fact]
    public async Task RawDialogue_AnswersWhatMailKitNeverSends()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync();
        using var raw = await RawClient.ConnectAsync(smtp.Port);

        Assert.Equal("220 scripted ESMTP", await raw.ReadReplyAsync());
        Assert.Equal("250 scripted", await raw.CommandAsync("HELO raw.test"));
        Assert.Equal("502 5.5.1 not supported", await raw.CommandAsync("AUTH PLAIN AGlvbgBzM2NyZXQ="));
        Assert.Equal("500 5.5.2 unrecognized", await raw.CommandAsync("VRFY root"));
        Assert.Equal("503 5.5.1 Error: need MAIL command", await raw.CommandAsync("RCPT TO:<a@example.com>"));
        Assert.Equal("501 5.5.4 Syntax: MAIL FROM:<address>", await raw.CommandAsync("MAIL <a@example.com>"));
        Assert.Equal("250 2.1.0 Ok", await raw.CommandAsync("MAIL FROM:<>"));
        Assert.Equal("554 5.5.1 Error: no valid recipients", await raw.CommandAsync("DATA"));
        Assert.Equal("250 2.0.0 Ok", await raw.CommandAsync("RSET"));
        Assert.Equal("250 2.1.0 Ok", await raw.CommandAsync("MAIL FROM:<\"odd > local\"@example.com> BODY=8BITMIME"));
        Assert.Equal("250 2.1.5 Ok", await raw.CommandAsync("RCPT TO:<b@example.com>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await raw.CommandAsync("DATA"));
        Assert.Equal("250 2.0.0 Ok: queued as 2", await raw.CommandAsync("Subject: x\r\n\r\n..dot\r\nbare LF\n."));
        Assert.Equal("221 2.0.0 Bye", await raw.CommandAsync("QUIT"));

        var sent = Assert.Single(smtp.Delivered);
        Assert.Equal("\"odd > local\"@example.com", sent.Sender);
        Assert.Equal("", smtp.Transactions[0].Sender);
        Assert.Equal("Subject: x\r\n\r\n.dot\r\nbare LF\r\n", Encoding.UTF8.GetString(sent.Message.Span));
    }

    [Fact]
    public async Task AbruptDisconnect_IsNotAnError_AndTheServerKeepsServing()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync();
        using (var raw = await RawClient.ConnectAsync(smtp.Port))
        {
            await raw.ReadReplyAsync();
            await raw.WriteAsync("EHLO raw.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nSubject: half a mess");
            await smtp.WaitUntilAsync(() => smtp.Count(ScriptedStage.Data) == 1, Wait, "DATA");
            raw.Reset();
        }
        await smtp.WaitUntilAsync(() => smtp.Transactions[0].EndedAt is not null, Wait, "the aborted transaction to end");

        using var client = await ConnectAsync(smtp);
        await client.SendAsync(Message("c@example.com"), Token);

        Assert.Equal(2, smtp.Transactions.Count);
        Assert.Equal("c@example.com", Assert.Single(smtp.Delivered).Recipients[0].Address);
        Assert.Empty(smtp.Errors);
    }

    [Fact]
    public async Task Dispose_ClosesOpenConnections_EvenDuringASlowReply()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync(SmtpScripts.Slow(ScriptedStage.MailFrom, TimeSpan.FromMinutes(1)));
        using var client = await ConnectAsync(smtp);
        var sending = client.SendAsync(Message("a@example.com"), Token);
        await smtp.WaitUntilAsync(() => smtp.Connections == 1 && smtp.Count(ScriptedStage.Ehlo) == 1, Wait, "EHLO");

        var started = Environment.TickCount64;
        await smtp.DisposeAsync();

        Assert.InRange(Environment.TickCount64 - started, 0, 5000);
        await Assert.ThrowsAnyAsync<Exception>(() => sending);
        Assert.False(client.IsConnected);
        Assert.False(await Ports.IsListeningAsync(smtp.Port));
        Assert.Empty(smtp.Errors);
    }

    [Fact]
    public async Task WaitForDelivered_TimesOut_SayingWhatTheServerSaw()
    {
        await using var smtp = await ScriptedSmtpServer.StartAsync(SmtpScripts.ReplyAt(ScriptedStage.EndOfData, 554, "5.7.1 Message rejected"));
        using var client = await ConnectAsync(smtp);
        await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(Message("a@example.com"), Token));

        var timeout = await Assert.ThrowsAsync<TimeoutException>(() => smtp.WaitForDeliveredAsync(1, TimeSpan.FromMilliseconds(100)));

        Assert.Contains("did not see 1 delivered message(s)", timeout.Message, StringComparison.Ordinal);
        Assert.Contains("1 transactions, 0 delivered", timeout.Message, StringComparison.Ordinal);
        Assert.Contains("C: .  S: 554 5.7.1 Message rejected", timeout.Message, StringComparison.Ordinal);
    }

    private static MimeMessage Message(params string[] to)
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("ion@test.example"));
        foreach (var address in to)
            message.To.Add(MailboxAddress.Parse(address));
        message.Subject = "Grüße";
        message.Body = new TextPart("plain") { Text = "Hello\n.a line starting with a dot\nbye ✓" };
        return message;
    }

    private static async Task<SmtpClient> ConnectAsync(ScriptedSmtpServer smtp, SmtpClient? client = null)
    {
        client ??= new SmtpClient();
        client.Timeout = 10_000;
        await client.ConnectAsync(IPAddress.Loopback.ToString(), smtp.Port, SecureSocketOptions.None, Token);
        return client;
    }

    /// <summary>What ion does: collect refused recipients and send to the others (MailKit's documented hook).</summary>
    private sealed class CollectingSmtpClient : SmtpClient
    {
        public List<string> Refused { get; } = [];

        protected override void OnRecipientNotAccepted(MimeMessage message, MailboxAddress mailbox, SmtpResponse response) =>
            Refused.Add($"{mailbox.Address} {(int)response.StatusCode}");
    }

    /// <summary>A bare socket, for the commands and misbehaviour MailKit never produces.</summary>
    private sealed class RawClient(TcpClient client) : IDisposable
    {
        private readonly NetworkStream _stream = client.GetStream();
        private readonly StreamReader _reader = new(client.GetStream(), Encoding.UTF8);

        public static async Task<RawClient> ConnectAsync(int port)
        {
            var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port, Token);
            return new RawClient(client);
        }

        public async Task WriteAsync(string text) => await _stream.WriteAsync(Encoding.UTF8.GetBytes(text), Token);

        /// <summary>The reply's last line (multi-line replies are "250-…" until "250 …").</summary>
        public async Task<string> ReadReplyAsync()
        {
            while (true)
            {
                var line = await _reader.ReadLineAsync(Token) ?? throw new IOException("the server closed the connection");
                if (line.Length < 4 || line[3] != '-')
                    return line;
            }
        }

        public async Task<string> CommandAsync(string line)
        {
            await WriteAsync(line + "\r\n");
            return await ReadReplyAsync();
        }

        /// <summary>Hangs up with a TCP reset, as a crashed client or a killed process does.</summary>
        public void Reset() => client.Client.LingerState = new LingerOption(true, 0);

        public void Dispose()
        {
            _reader.Dispose();
            client.Dispose();
        }
    }
}
