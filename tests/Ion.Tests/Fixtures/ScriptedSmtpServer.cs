using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MimeKit;

namespace Ion.Tests.Fixtures;

// The types below carry a "Scripted" prefix where a plain name would collide in a test that also uses Ion.Delivery
// (its SmtpReply and SmtpStage are visible to this assembly).

/// <summary>Where in the dialogue the server is about to answer.</summary>
public enum ScriptedStage
{
    Connect,
    /// <summary>EHLO or HELO.</summary>
    Ehlo,
    MailFrom,
    RcptTo,
    Data,
    EndOfData,
    Rset,
    Noop,
    Quit,
    /// <summary>AUTH, STARTTLS, VRFY or anything else the server does not implement.</summary>
    Other,
}

/// <summary>Decides the reply to one command; null leaves it to the server (<see cref="SmtpCommandContext.Default"/>).</summary>
public delegate ScriptedReply? SmtpScript(SmtpCommandContext context);

/// <summary>
/// One reply. <see cref="Text"/> may hold several lines (separated by '\n'), sent as a multi-line reply.
/// <see cref="Delay"/> is waited before answering; <see cref="CloseAfter"/> closes the connection once it is sent.
/// </summary>
public sealed record ScriptedReply(int Code, string Text, bool CloseAfter = false, TimeSpan Delay = default)
{
    /// <summary>Closes the connection without answering, as a relay that crashes or a middlebox that drops it.</summary>
    public static ScriptedReply Drop { get; } = new(0, "", CloseAfter: true);

    /// <summary>What a busy Postfix says before hanging up.</summary>
    public static ScriptedReply ServiceNotAvailable { get; } = new(421, "4.7.0 Try again later, closing connection", CloseAfter: true);
}

/// <summary>Everything a script may look at to decide a reply.</summary>
public sealed record SmtpCommandContext
{
    public required ScriptedStage Stage { get; init; }

    /// <summary>The command line as received, without CRLF; "" at <see cref="ScriptedStage.Connect"/>, "." at <see cref="ScriptedStage.EndOfData"/>.</summary>
    public required string Line { get; init; }

    /// <summary>The address of MAIL/RCPT without the angle brackets (exactly as sent), the EHLO/HELO name, else "".</summary>
    public required string Argument { get; init; }

    /// <summary>Connections accepted so far, this one included (from 1).</summary>
    public required int ConnectionNumber { get; init; }

    /// <summary>MAIL FROM commands the server has taken so far, on all connections (from 1; 0 before the first).</summary>
    public required int TransactionNumber { get; init; }

    /// <summary>How often this stage has come with this argument (case-insensitive), this time included: the n-th try of a recipient.</summary>
    public required int Attempt { get; init; }

    /// <summary>The current transaction's sender, null outside a transaction.</summary>
    public required string? Sender { get; init; }

    public required IReadOnlyList<string> AcceptedRecipients { get; init; }

    /// <summary><see cref="Environment.TickCount64"/> when the command was read.</summary>
    public required long TickCount { get; init; }

    /// <summary>The message as received (dot-stuffing undone), at <see cref="ScriptedStage.EndOfData"/> only.</summary>
    public ReadOnlyMemory<byte> Message { get; init; }

    /// <summary>What the server answers if the script returns null; <c>context.Default with { Delay = … }</c> slows it down.</summary>
    public required ScriptedReply Default { get; init; }
}

/// <summary>The EHLO keywords the server advertises; none of them is enforced.</summary>
public sealed record ScriptedExtensions
{
    public static ScriptedExtensions Default { get; } = new();

    public bool Pipelining { get; init; } = true;
    public bool EightBitMime { get; init; } = true;
    public bool SmtpUtf8 { get; init; } = true;
    public bool EnhancedStatusCodes { get; init; } = true;
    public long? Size { get; init; } = 52_428_800;

    internal IEnumerable<string> Keywords()
    {
        if (Pipelining)
            yield return "PIPELINING";
        if (EightBitMime)
            yield return "8BITMIME";
        if (SmtpUtf8)
            yield return "SMTPUTF8";
        if (EnhancedStatusCodes)
            yield return "ENHANCEDSTATUSCODES";
        if (Size is { } size)
            yield return $"SIZE {size}";
    }
}

public sealed record SmtpRecipient(string Address, string Line, int ReplyCode, string ReplyText)
{
    public bool Accepted => ReplyCode is >= 200 and < 300;
}

/// <summary>
/// One MAIL FROM and what followed it, up to the end-of-data reply, RSET, EHLO, QUIT or the connection's end.
/// A refused MAIL FROM is a transaction too (with no recipients), so refusals can be counted.
/// Reply code 0 means the script dropped the connection instead of answering (<see cref="ScriptedReply.Drop"/>).
/// </summary>
public sealed record SmtpTransaction
{
    public required int Number { get; init; }
    public required int ConnectionNumber { get; init; }
    public required string MailFromLine { get; init; }
    public required string Sender { get; init; }

    /// <summary>The MAIL FROM parameters as sent, e.g. "BODY=8BITMIME", "SMTPUTF8", "SIZE=1234".</summary>
    public required IReadOnlyList<string> MailParameters { get; init; }

    public required int MailFromReply { get; init; }
    public required long StartedAt { get; init; }
    public IReadOnlyList<SmtpRecipient> Recipients { get; init; } = [];
    public int? DataReply { get; init; }
    public int? EndOfDataReply { get; init; }
    public string? EndOfDataReplyText { get; init; }

    /// <summary>The message as received (dot-stuffing undone), whatever the end-of-data reply; empty if none arrived.</summary>
    public ReadOnlyMemory<byte> Message { get; init; }

    /// <summary><see cref="Environment.TickCount64"/> when the transaction ended; null while it is open.</summary>
    public long? EndedAt { get; init; }

    public bool Delivered => EndOfDataReply is >= 200 and < 300;

    public bool HasParameter(string keyword) =>
        MailParameters.Any(p => p.Equals(keyword, StringComparison.OrdinalIgnoreCase)
            || p.StartsWith(keyword + "=", StringComparison.OrdinalIgnoreCase));

    public IEnumerable<string> AcceptedRecipients => Recipients.Where(r => r.Accepted).Select(r => r.Address);

    public MimeMessage ParseMessage()
    {
        using var stream = new MemoryStream(Message.ToArray());
        return MimeMessage.Load(stream);
    }
}

/// <summary>One command and its reply, in the order the server answered them.</summary>
/// <param name="Pipelined">The client had already sent more when this command was read: it did not wait for the reply.</param>
/// <param name="At"><see cref="Environment.TickCount64"/> when the reply went out (after any delay).</param>
public sealed record SmtpExchange(int ConnectionNumber, ScriptedStage Stage, string Line, int ReplyCode, string ReplyText, bool Pipelined, long At);

/// <summary>
/// A real SMTP server on 127.0.0.1 (free port) whose replies a test scripts: per recipient, per stage, slow, closing,
/// throttling, with or without SMTPUTF8/PIPELINING. It records every transaction and command for assertions.
/// It exists because smtp-sink answers every recipient alike and cannot change its mind while running.
/// </summary>
public sealed class ScriptedSmtpServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private readonly List<SmtpTransaction> _transactions = [];
    private readonly List<SmtpExchange> _exchanges = [];
    private readonly List<Exception> _errors = [];
    private readonly Dictionary<(ScriptedStage, string), int> _attempts = [];
    private readonly ConcurrentDictionary<int, TcpClient> _open = new();
    private readonly ConcurrentDictionary<int, Task> _handlers = new();
    private Task _accepting = Task.CompletedTask;
    private SmtpScript? _script;
    private ScriptedExtensions _extensions;
    private int _connections;
    private int _disposed;

    private ScriptedSmtpServer(SmtpScript? script, ScriptedExtensions extensions)
    {
        _script = script;
        _extensions = extensions;
        _listener = new TcpListener(IPAddress.Loopback, 0);
    }

    /// <summary>Still the port after disposal, so a test can check nothing listens there any more.</summary>
    public int Port { get; private set; }

    /// <summary>Replaceable while connections are open (the relay "gets fixed"); the next command sees the new script.</summary>
    public SmtpScript? Script
    {
        get => Volatile.Read(ref _script);
        set => Volatile.Write(ref _script, value);
    }

    /// <summary>Replaceable too; a client sees the change at its next EHLO (MailKit: its next connection).</summary>
    public ScriptedExtensions Extensions
    {
        get => Volatile.Read(ref _extensions);
        set => Volatile.Write(ref _extensions, value);
    }

    public int Connections => Volatile.Read(ref _connections);

    public IReadOnlyList<SmtpTransaction> Transactions
    {
        get
        {
            lock (_gate)
                return [.. _transactions];
        }
    }

    /// <summary>Transactions whose message got a 2xx at end of data.</summary>
    public IReadOnlyList<SmtpTransaction> Delivered => [.. Transactions.Where(t => t.Delivered)];

    public IReadOnlyList<SmtpExchange> Exchanges
    {
        get
        {
            lock (_gate)
                return [.. _exchanges];
        }
    }

    /// <summary>Failures of the fixture or a script (not clients hanging up): a test can assert there were none.</summary>
    public IReadOnlyList<Exception> Errors
    {
        get
        {
            lock (_gate)
                return [.. _errors];
        }
    }

    // Task-returning like the other fixtures' StartAsync, so a test reads the same whichever server it starts.
    public static Task<ScriptedSmtpServer> StartAsync(SmtpScript? script = null, ScriptedExtensions? extensions = null)
    {
        var server = new ScriptedSmtpServer(script, extensions ?? ScriptedExtensions.Default);
        server._listener.Start();
        server.Port = ((IPEndPoint)server._listener.LocalEndpoint).Port;
        server._accepting = server.AcceptAsync();
        return Task.FromResult(server);
    }

    /// <summary>Commands of a stage answered so far, e.g. MAIL FROMs, to see that a client does not loop.</summary>
    public int Count(ScriptedStage stage) => Exchanges.Count(e => e.Stage == stage);

    public async Task<IReadOnlyList<SmtpTransaction>> WaitForDeliveredAsync(int count, TimeSpan timeout)
    {
        await WaitUntilAsync(() => Delivered.Count >= count, timeout, $"{count} delivered message(s)");
        return Delivered;
    }

    public async Task<IReadOnlyList<SmtpTransaction>> WaitForTransactionsAsync(int count, TimeSpan timeout)
    {
        await WaitUntilAsync(() => Transactions.Count >= count, timeout, $"{count} transaction(s)");
        return Transactions;
    }

    /// <summary>Polls <paramref name="condition"/>; the <see cref="TimeoutException"/> tells what the server saw.</summary>
    public async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (!condition())
        {
            if (Environment.TickCount64 > deadline)
            {
                var errors = Errors;
                throw new TimeoutException(
                    $"the scripted SMTP server did not see {what} within {timeout} "
                    + $"({Connections} connections, {Transactions.Count} transactions, {Delivered.Count} delivered, {errors.Count} errors)"
                    + (errors.Count > 0 ? $"\nfirst error: {errors[0]}" : "")
                    + $"\nlast exchanges:\n{Transcript()}");
            }
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>The last commands and replies, "#connection C: … S: …", for failure messages.</summary>
    public string Transcript(int last = 30)
    {
        var lines = Exchanges.TakeLast(last).Select(e =>
            $"#{e.ConnectionNumber} C: {(e.Stage == ScriptedStage.Connect ? "(connect)" : e.Line)}  S: {(e.ReplyCode == 0 ? "(dropped)" : $"{e.ReplyCode} {e.ReplyText.ReplaceLineEndings(" | ")}")}");
        return string.Join('\n', lines);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
            return;
        await _stopping.CancelAsync();
        _listener.Stop();
        await _accepting;
        foreach (var client in _open.Values)
            client.Dispose();
        await Task.WhenAll(_handlers.Values);
        _listener.Dispose();
        _stopping.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (true)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stopping.Token);
            }
            catch (Exception) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e)
            {
                Fail(e);
                return;
            }
            // Replies to pipelined commands go out one write each; with Nagle's algorithm the second would wait for the
            // client's delayed ACK of the first (40 ms), and every test would measure that instead of ion.
            client.NoDelay = true;
            var number = Interlocked.Increment(ref _connections);
            _open[number] = client;
            _handlers[number] = Task.Run(() => HandleAsync(client, number));
        }
    }

    private async Task HandleAsync(TcpClient client, int number)
    {
        var session = new Session(this, client, number);
        try
        {
            await session.RunAsync(_stopping.Token);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException
            || (e is OperationCanceledException && _stopping.IsCancellationRequested))
        {
            // The client hung up (or the server is stopping): what a relay sees every day, not a fixture failure.
        }
        catch (Exception e)
        {
            Fail(e);
        }
        finally
        {
            session.EndTransaction();
            _open.TryRemove(number, out _);
            client.Dispose();
        }
    }

    private void Fail(Exception error)
    {
        lock (_gate)
            _errors.Add(error);
    }

    private int NextAttempt(ScriptedStage stage, string argument)
    {
        var key = (stage, argument.ToUpperInvariant());
        lock (_gate)
        {
            var attempt = _attempts.GetValueOrDefault(key) + 1;
            _attempts[key] = attempt;
            return attempt;
        }
    }

    private int TransactionCount()
    {
        lock (_gate)
            return _transactions.Count;
    }

    private SmtpTransaction Begin(Func<int, SmtpTransaction> create)
    {
        // Numbering and adding under one lock keeps Number == index + 1 with connections racing.
        lock (_gate)
        {
            var transaction = create(_transactions.Count + 1);
            _transactions.Add(transaction);
            return transaction;
        }
    }

    private void Update(int number, Func<SmtpTransaction, SmtpTransaction> change)
    {
        lock (_gate)
            _transactions[number - 1] = change(_transactions[number - 1]);
    }

    private void Record(SmtpExchange exchange)
    {
        lock (_gate)
            _exchanges.Add(exchange);
    }

    private ScriptedReply Decide(SmtpCommandContext context)
    {
        try
        {
            return Script?.Invoke(context) ?? context.Default;
        }
        catch (Exception e)
        {
            Fail(e);
            return new ScriptedReply(451, $"4.3.0 fixture script failed: {e.Message}");
        }
    }

    /// <summary>One connection's dialogue. Reading line by line from a buffer answers pipelined commands in order.</summary>
    private sealed class Session(ScriptedSmtpServer server, TcpClient client, int number)
    {
        private static readonly ScriptedReply MustDeclareSmtpUtf8 = new(553, "5.6.7 Must declare SMTPUTF8 to send unicode address");

        private readonly NetworkStream _stream = client.GetStream();
        private readonly LineReader _reader = new(client.GetStream()); // the same stream: TcpClient hands out one
        private readonly List<string> _accepted = [];
        private SmtpTransaction? _transaction;
        private bool _smtpUtf8;

        public async Task RunAsync(CancellationToken stopping)
        {
            var greeting = new ScriptedReply(220, "scripted ESMTP");
            if (!await AnswerAsync(ScriptedStage.Connect, "", "", greeting, pipelined: false, stopping))
                return;
            while (true)
            {
                var raw = await _reader.ReadLineAsync(stopping);
                if (raw is null)
                    return;
                var line = Encoding.UTF8.GetString(raw);
                var pipelined = _reader.HasBuffered || client.Available > 0;
                var verb = line.Split(' ', 2)[0].ToUpperInvariant();
                var open = verb switch
                {
                    "EHLO" or "HELO" => await HelloAsync(line, verb, pipelined, stopping),
                    "MAIL" => await MailAsync(line, pipelined, stopping),
                    "RCPT" => await RcptAsync(line, pipelined, stopping),
                    "DATA" => await DataAsync(line, pipelined, stopping),
                    "RSET" => await ResetAsync(line, pipelined, stopping),
                    "NOOP" => await AnswerAsync(ScriptedStage.Noop, line, "", new(250, "2.0.0 Ok"), pipelined, stopping),
                    "QUIT" => await QuitAsync(line, pipelined, stopping),
                    // ion talks plain SMTP to a loopback relay; a client that tries these has been misconfigured.
                    "AUTH" or "STARTTLS" => await AnswerAsync(ScriptedStage.Other, line, "", new(502, "5.5.1 not supported"), pipelined, stopping),
                    _ => await AnswerAsync(ScriptedStage.Other, line, "", new(500, "5.5.2 unrecognized"), pipelined, stopping),
                };
                if (!open)
                    return;
            }
        }

        public void EndTransaction()
        {
            if (_transaction is { } transaction)
                server.Update(transaction.Number, t => t with { EndedAt = Environment.TickCount64 });
            _transaction = null;
            _smtpUtf8 = false;
            _accepted.Clear();
        }

        private async Task<bool> HelloAsync(string line, string verb, bool pipelined, CancellationToken stopping)
        {
            // EHLO resets any transaction (RFC 5321 4.1.4).
            EndTransaction();
            var name = line.Length > verb.Length ? line[verb.Length..].Trim() : "";
            var fallback = verb == "EHLO"
                ? new ScriptedReply(250, string.Join('\n', server.Extensions.Keywords().Prepend("scripted")))
                : new ScriptedReply(250, "scripted");
            return await AnswerAsync(ScriptedStage.Ehlo, line, name, fallback, pipelined, stopping);
        }

        private async Task<bool> MailAsync(string line, bool pipelined, CancellationToken stopping)
        {
            if (_transaction is not null)
                return await SendAsync(ScriptedStage.MailFrom, line, new(503, "5.5.1 Error: nested MAIL command"), pipelined, stopping);
            if (!TryParsePath(line, "MAIL FROM:", out var sender, out var parameters))
                return await SendAsync(ScriptedStage.MailFrom, line, new(501, "5.5.4 Syntax: MAIL FROM:<address>"), pipelined, stopping);

            var started = Environment.TickCount64;
            var smtpUtf8 = parameters.Contains("SMTPUTF8", StringComparer.OrdinalIgnoreCase);
            // Postfix's answers, so a client that gets SMTPUTF8 wrong fails here as it would in production.
            ScriptedReply fallback = smtpUtf8 && !server.Extensions.SmtpUtf8 ? new(555, "5.5.4 Unsupported option: SMTPUTF8")
                : !smtpUtf8 && !Ascii.IsValid(sender) ? MustDeclareSmtpUtf8
                : new(250, "2.1.0 Ok");
            var reply = await DecideAsync(ScriptedStage.MailFrom, line, sender, fallback, stopping);
            var transaction = server.Begin(n => new SmtpTransaction
            {
                Number = n,
                ConnectionNumber = number,
                MailFromLine = line,
                Sender = sender,
                MailParameters = parameters,
                MailFromReply = reply.Code,
                StartedAt = started,
                EndedAt = reply.Code is >= 200 and < 300 ? null : Environment.TickCount64,
            });
            if (reply.Code is >= 200 and < 300)
            {
                _transaction = transaction;
                _smtpUtf8 = smtpUtf8;
            }
            return await SendAsync(ScriptedStage.MailFrom, line, reply, pipelined, stopping);
        }

        private async Task<bool> RcptAsync(string line, bool pipelined, CancellationToken stopping)
        {
            if (_transaction is null)
                return await SendAsync(ScriptedStage.RcptTo, line, new(503, "5.5.1 Error: need MAIL command"), pipelined, stopping);
            if (!TryParsePath(line, "RCPT TO:", out var recipient, out _) || recipient.Length == 0)
                return await SendAsync(ScriptedStage.RcptTo, line, new(501, "5.5.4 Syntax: RCPT TO:<address>"), pipelined, stopping);

            var fallback = !_smtpUtf8 && !Ascii.IsValid(recipient) ? MustDeclareSmtpUtf8 : new ScriptedReply(250, "2.1.5 Ok");
            var reply = await DecideAsync(ScriptedStage.RcptTo, line, recipient, fallback, stopping);
            if (reply.Code is >= 200 and < 300)
                _accepted.Add(recipient);
            var recorded = new SmtpRecipient(recipient, line, reply.Code, reply.Text);
            server.Update(_transaction.Number, t => t with { Recipients = [.. t.Recipients, recorded] });
            return await SendAsync(ScriptedStage.RcptTo, line, reply, pipelined, stopping);
        }

        private async Task<bool> DataAsync(string line, bool pipelined, CancellationToken stopping)
        {
            if (_transaction is null)
                return await SendAsync(ScriptedStage.Data, line, new(503, "5.5.1 Error: need MAIL command"), pipelined, stopping);

            // Postfix's answer when every RCPT was refused; a script may still answer 354 to see what the client does.
            var fallback = _accepted.Count == 0
                ? new ScriptedReply(554, "5.5.1 Error: no valid recipients")
                : new ScriptedReply(354, "End data with <CR><LF>.<CR><LF>");
            var reply = await DecideAsync(ScriptedStage.Data, line, "", fallback, stopping);
            var transactionNumber = _transaction.Number;
            server.Update(transactionNumber, t => t with { DataReply = reply.Code });
            if (!await SendAsync(ScriptedStage.Data, line, reply, pipelined, stopping))
                return false;
            if (reply.Code != 354)
                return true;

            var message = await ReadMessageAsync(stopping);
            if (message is null)
                return false;
            // Recorded before the reply is decided, so a test can see what arrived while a slow reply is pending.
            server.Update(transactionNumber, t => t with { Message = message });
            var done = await DecideAsync(ScriptedStage.EndOfData, ".", "", new(250, $"2.0.0 Ok: queued as {transactionNumber}"), stopping, message);
            server.Update(transactionNumber, t => t with { EndOfDataReply = done.Code, EndOfDataReplyText = done.Text });
            // The transaction is over whatever the reply (RFC 5321 4.1.1.4).
            EndTransaction();
            return await SendAsync(ScriptedStage.EndOfData, ".", done, pipelined: false, stopping);
        }

        private async Task<bool> ResetAsync(string line, bool pipelined, CancellationToken stopping)
        {
            EndTransaction();
            return await AnswerAsync(ScriptedStage.Rset, line, "", new(250, "2.0.0 Ok"), pipelined, stopping);
        }

        private async Task<bool> QuitAsync(string line, bool pipelined, CancellationToken stopping)
        {
            await AnswerAsync(ScriptedStage.Quit, line, "", new(221, "2.0.0 Bye"), pipelined, stopping);
            return false;
        }

        /// <summary>Null when the client hung up before the final dot.</summary>
        private async Task<byte[]?> ReadMessageAsync(CancellationToken stopping)
        {
            using var message = new MemoryStream();
            while (true)
            {
                var line = await _reader.ReadLineAsync(stopping);
                if (line is null)
                    return null;
                if (line is [(byte)'.'])
                    return message.ToArray();
                var unstuffed = line is [(byte)'.', ..] ? line.AsMemory(1) : line;
                await message.WriteAsync(unstuffed, stopping);
                await message.WriteAsync("\r\n"u8.ToArray(), stopping);
            }
        }

        private async Task<bool> AnswerAsync(
            ScriptedStage stage, string line, string argument, ScriptedReply fallback, bool pipelined, CancellationToken stopping)
        {
            var reply = await DecideAsync(stage, line, argument, fallback, stopping);
            return await SendAsync(stage, line, reply, pipelined, stopping);
        }

        private async Task<ScriptedReply> DecideAsync(
            ScriptedStage stage, string line, string argument, ScriptedReply fallback, CancellationToken stopping,
            ReadOnlyMemory<byte> message = default)
        {
            var reply = server.Decide(new SmtpCommandContext
            {
                Stage = stage,
                Line = line,
                Argument = argument,
                ConnectionNumber = number,
                TransactionNumber = server.TransactionCount() + (stage == ScriptedStage.MailFrom ? 1 : 0),
                Attempt = server.NextAttempt(stage, argument),
                Sender = _transaction?.Sender,
                AcceptedRecipients = [.. _accepted],
                TickCount = Environment.TickCount64,
                Message = message,
                Default = fallback,
            });
            if (reply.Delay > TimeSpan.Zero)
                await Task.Delay(reply.Delay, stopping);
            return reply;
        }

        /// <summary>Writes the reply and records it; false when the connection is to be closed.</summary>
        private async Task<bool> SendAsync(ScriptedStage stage, string line, ScriptedReply reply, bool pipelined, CancellationToken stopping)
        {
            server.Record(new SmtpExchange(number, stage, line, reply.Code, reply.Text, pipelined, Environment.TickCount64));
            if (reply.Code != 0)
                await _stream.WriteAsync(Format(reply), stopping);
            return !reply.CloseAfter;
        }

        private static byte[] Format(ScriptedReply reply)
        {
            var lines = reply.Text.Split('\n');
            var text = new StringBuilder();
            for (var i = 0; i < lines.Length; i++)
                text.Append(reply.Code).Append(i < lines.Length - 1 ? '-' : ' ').Append(lines[i].TrimEnd('\r')).Append("\r\n");
            return Encoding.UTF8.GetBytes(text.ToString());
        }

        /// <summary>"MAIL FROM:&lt;a@b&gt; BODY=8BITMIME" → "a@b", ["BODY=8BITMIME"]; also takes a bare address.</summary>
        private static bool TryParsePath(string line, string prefix, out string address, out IReadOnlyList<string> parameters)
        {
            address = "";
            parameters = [];
            if (!line.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                return false;
            var rest = line[prefix.Length..].TrimStart();
            int end;
            if (rest.StartsWith('<'))
            {
                // A quoted local part may hold '>' or spaces.
                var quoted = false;
                for (end = 1; end < rest.Length; end++)
                {
                    if (rest[end] == '\\' && quoted)
                        end++;
                    else if (rest[end] == '"')
                        quoted = !quoted;
                    else if (rest[end] == '>' && !quoted)
                        break;
                }
                if (end >= rest.Length)
                    return false;
                address = rest[1..end];
                end++;
            }
            else
            {
                end = rest.IndexOf(' ', StringComparison.Ordinal);
                if (end < 0)
                    end = rest.Length;
                address = rest[..end];
            }
            parameters = rest[end..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return true;
        }
    }

    /// <summary>CRLF (or bare LF) terminated lines as bytes, so 8-bit data passes untouched.</summary>
    private sealed class LineReader(Stream stream)
    {
        // Far beyond RFC 5321's 1000 octets: only a broken client gets here, and it should not eat the test's memory.
        private const int MaxLine = 1 << 20;
        private readonly byte[] _buffer = new byte[16 * 1024];
        private readonly ArrayBufferWriter<byte> _pending = new();
        private int _start;
        private int _end;

        public bool HasBuffered => _start < _end;

        /// <summary>Null at end of stream (a partial last line is dropped).</summary>
        public async Task<byte[]?> ReadLineAsync(CancellationToken cancellationToken)
        {
            _pending.ResetWrittenCount();
            while (true)
            {
                var newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
                if (newline >= 0)
                {
                    _pending.Write(_buffer.AsSpan(_start, newline - _start));
                    _start = newline + 1;
                    var line = _pending.WrittenSpan.ToArray();
                    return line is [.., (byte)'\r'] ? line[..^1] : line;
                }
                _pending.Write(_buffer.AsSpan(_start, _end - _start));
                if (_pending.WrittenCount > MaxLine)
                    throw new InvalidDataException($"a line longer than {MaxLine} bytes");
                _start = 0;
                _end = await stream.ReadAsync(_buffer, cancellationToken);
                if (_end == 0)
                    return null;
            }
        }
    }
}

/// <summary>Scripts for the usual relay behaviours; combine them with <see cref="First"/>.</summary>
public static class SmtpScripts
{
    /// <summary>The first script with an answer wins; null from all leaves it to the server.</summary>
    public static SmtpScript First(params SmtpScript[] scripts) =>
        context => scripts.Select(script => script(context)).FirstOrDefault(reply => reply is not null);

    /// <summary>The same reply at every command of a stage, e.g. 421 (closing) at end of data.</summary>
    public static SmtpScript ReplyAt(ScriptedStage stage, int code, string text, bool closeAfter = false) =>
        context => context.Stage == stage ? new ScriptedReply(code, text, closeAfter) : null;

    /// <summary>The server's usual reply at a stage, after a delay: a slow relay.</summary>
    public static SmtpScript Slow(ScriptedStage stage, TimeSpan delay) =>
        context => context.Stage == stage ? context.Default with { Delay = delay } : null;

    /// <summary>
    /// Refuses the given recipients at RCPT. Each entry is an address or the start of one, compared ignoring case:
    /// ("bounce", 550, …) refuses bounce@x and bounce-2@y.
    /// </summary>
    public static SmtpScript RefuseRecipients(params (string Address, int Code, string Text)[] refusals) =>
        context => context.Stage != ScriptedStage.RcptTo
            ? null
            : refusals
                .Where(r => context.Argument.StartsWith(r.Address, StringComparison.OrdinalIgnoreCase))
                .Select(r => new ScriptedReply(r.Code, r.Text))
                .FirstOrDefault();

    /// <summary>Refuses a recipient its first <paramref name="times"/> tries (across connections), then accepts it: a mailbox that was full.</summary>
    public static SmtpScript RefuseRecipientTimes(string address, int times, int code, string text) =>
        context => context.Stage == ScriptedStage.RcptTo
            && context.Argument.StartsWith(address, StringComparison.OrdinalIgnoreCase)
            && context.Attempt <= times
                ? new ScriptedReply(code, text)
                : null;

    /// <summary>
    /// Refuses MAIL FROM once <paramref name="max"/> transactions were let through within the last
    /// <paramref name="per"/> (one second unless given), as Amazon SES does past its sending rate.
    /// </summary>
    public static SmtpScript Throttle(int max, TimeSpan? per = null, ScriptedReply? reply = null)
    {
        var window = (long)(per ?? TimeSpan.FromSeconds(1)).TotalMilliseconds;
        var refusal = reply ?? new ScriptedReply(454, "4.7.0 Throttling failure: Maximum sending rate exceeded.");
        var admitted = new Queue<long>();
        var gate = new Lock();
        return context =>
        {
            if (context.Stage != ScriptedStage.MailFrom)
                return null;
            lock (gate)
            {
                while (admitted.Count > 0 && context.TickCount - admitted.Peek() >= window)
                    admitted.Dequeue();
                if (admitted.Count >= max)
                    return refusal;
                admitted.Enqueue(context.TickCount);
                return null;
            }
        };
    }
}
