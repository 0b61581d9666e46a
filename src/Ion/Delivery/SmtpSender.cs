using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Ion.Messages;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace Ion.Delivery;

/// <summary>
/// One connection to the relay, kept open across messages (one per worker slot). MailKit pipelines MAIL/RCPT by
/// itself when the relay offers PIPELINING. Not thread-safe: one slot, one sender.
/// </summary>
/// <remarks>
/// Each recipient gets its own answer: a refused RCPT does not stop the others from getting the message. Domains go
/// out as A-labels: SMTPUTF8 is used only for recipients whose local part needs it, in a transaction of their own,
/// because a message sent with SMTPUTF8 bounces at the first next hop that does not offer it.
/// </remarks>
public sealed class SmtpSender(RelayOptions options, TimeProvider time) : IAsyncDisposable
{
    private RecipientCollectingClient? _client;
    private Socket? _socket;
    private long _lastUsed;
    // Whether the relay offered SMTPUTF8 at the last EHLO; ion switches it off in MailKit for every transaction
    // that does not need it, and MailKit can only switch capabilities off, so turning it back on means reconnecting.
    private bool _offersSmtpUtf8;

    /// <summary>Sends <paramref name="message"/> from <paramref name="sender"/> to <paramref name="recipients"/>
    /// (canonical addresses: A-label domains). Every failure comes back as an answer, never as an exception (except
    /// cancellation of <paramref name="cancellationToken"/>, and a failure of <paramref name="before"/>).</summary>
    /// <param name="before">What the relay must not have the whole message before (the previous outcome's record): the
    /// transaction goes at once, its end of data waits (<see cref="WaitingBody"/>). If it fails, the connection is
    /// dropped before the end of the data, so the relay discards the message, and this throws what it failed with.</param>
    public Task<DeliveryOutcome> SendAsync(MimeMessage message, string sender, IReadOnlyList<string> recipients, CancellationToken cancellationToken) =>
        SendAsync(message, sender, recipients, Task.CompletedTask, cancellationToken);

    /// <inheritdoc cref="SendAsync(MimeMessage, string, IReadOnlyList{string}, CancellationToken)"/>
    public async Task<DeliveryOutcome> SendAsync(MimeMessage message, string sender, IReadOnlyList<string> recipients, Task before, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(recipients);
        ArgumentNullException.ThrowIfNull(before);
        // Always wrapped, also when there is nothing left to wait for: one way of writing messages, whatever the timing.
        if (message.Body is { } body and not WaitingBody)
            message.Body = new WaitingBody(body, before);
        // MailKit sends a recipient once however often it is listed (to and cc), ignoring case; so does ion.
        var unique = recipients.Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var plain = unique.Where(r => !Addresses.NeedsSmtpUtf8(r)).ToList();
        var international = unique.Where(Addresses.NeedsSmtpUtf8).ToList();

        List<RecipientAnswer> answers = [];
        SmtpAnswer? summary = null;
        if (plain.Count > 0)
        {
            var outcome = await TransactAsync(message, sender, plain, smtpUtf8: false, cancellationToken);
            answers.AddRange(outcome.Recipients);
            summary = outcome.Summary;
        }
        if (international.Count > 0)
        {
            DeliveryOutcome outcome;
            if (summary is { IsAboutTheRelay: true })
                outcome = DeliveryOutcome.ForAll(summary, international);
            else if (await ConnectAsync(cancellationToken) is { } failure)
                outcome = DeliveryOutcome.ForAll(failure, international);
            else if (!_offersSmtpUtf8)
                outcome = DeliveryOutcome.ForAll(new SmtpAnswer(OutcomeKind.Permanent, null, null,
                    "the address has a non-ASCII local part, which needs SMTPUTF8, and the relay does not offer SMTPUTF8"), international);
            else
                outcome = await TransactAsync(message, sender, international, smtpUtf8: true, cancellationToken);
            answers.AddRange(outcome.Recipients);
            // The plain recipients' transaction sums up the attempt when there was one; otherwise this one does.
            summary ??= outcome.Summary;
        }
        return new DeliveryOutcome(summary ?? throw new ArgumentException("no recipients", nameof(recipients)), answers);
    }

    private async Task<DeliveryOutcome> TransactAsync(MimeMessage message, string sender, List<string> recipients, bool smtpUtf8, CancellationToken cancellationToken)
    {
        if (smtpUtf8 && _client is not null && (_client.Capabilities & SmtpCapabilities.UTF8) == 0)
            await ResetAsync();
        if (await ConnectAsync(cancellationToken) is { } failure)
            return DeliveryOutcome.ForAll(failure, recipients);
        var client = _client!;
        if (!smtpUtf8)
            client.Capabilities &= ~SmtpCapabilities.UTF8;

        var mailboxes = client.StartTransaction(recipients);
        try
        {
            var format = FormatOptions.Default.Clone();
            format.International = smtpUtf8;
            var reply = await client.SendAsync(format, message, new MailboxAddress("", sender), mailboxes, cancellationToken);
            _lastUsed = time.GetTimestamp();
            var accepted = SmtpAnswer.Accepted(reply);
            // Recipients the relay refused keep their RCPT answer; those it accepted got the message.
            return new DeliveryOutcome(accepted, [.. recipients.Select(r => new RecipientAnswer(r, client.Refused.GetValueOrDefault(r) ?? accepted))]);
        }
        catch (Exception error) when (!cancellationToken.IsCancellationRequested)
        {
            if (message.Body is WaitingBody { Waited: { IsCompleted: true, IsCompletedSuccessfully: false } waited })
            {
                // The content never went: hanging up mid-data (no QUIT, which would be data) makes the relay discard it.
                await ResetAsync(quit: false);
                await waited;
            }
            // MailKit resets the transaction after a refused command (SmtpCommandException, and the
            // ServiceNotAuthenticatedException of a 530) and keeps the connection; after anything else it has
            // disconnected, and ion starts afresh next time.
            if (!client.IsConnected)
                await ResetAsync();
            if (client.NoneAccepted)
                return new DeliveryOutcome(client.Refused[recipients[0]], [.. recipients.Select(r => new RecipientAnswer(r, client.Refused[r]))]);
            var answer = SmtpOutcomes.Classify(error, SmtpStage.Data);
            // A refused MAIL FROM, or an answer about the relay itself, ends the transaction for everyone: the RCPT
            // answers pipelined behind it say nothing then. Otherwise a recipient refused at RCPT keeps its own answer
            // and those accepted share the fate of the data.
            var ownAnswers = !answer.IsAboutTheRelay && error is not SmtpCommandException { ErrorCode: SmtpErrorCode.SenderNotAccepted };
            return new DeliveryOutcome(answer, [.. recipients.Select(r => new RecipientAnswer(r, ownAnswers ? client.Refused.GetValueOrDefault(r) ?? answer : answer))]);
        }
    }

    /// <summary>Makes sure there is a usable, authenticated connection. Returns null when there is, else why not.</summary>
    public async Task<SmtpAnswer?> ConnectAsync(CancellationToken cancellationToken)
    {
        if (_client is { IsConnected: true } && time.GetElapsedTime(_lastUsed) < options.IdleTimeout && !ClosedByRelay())
            return null;
        await ResetAsync();

        var client = new RecipientCollectingClient
        {
            Timeout = (int)options.CommandTimeout.TotalMilliseconds,
            LocalDomain = string.IsNullOrWhiteSpace(options.ClientName) ? null : options.ClientName,
        };
        if (options.CertificateSha256 is { } pin)
        {
            var expected = pin.Replace(":", "", StringComparison.Ordinal);
            client.ServerCertificateValidationCallback = (_, certificate, _, _) => MatchesPin(certificate, expected);
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.ConnectTimeout);
        // ion opens the socket itself so that it can tell, before reusing the connection, whether the relay has
        // closed it meanwhile (see ClosedByRelay).
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(options.Host, options.Port, timeout.Token);
            await client.ConnectAsync(socket, options.Host, options.Port, SocketOptions(options.Security), timeout.Token);
            if (options.HasCredentials)
                await client.AuthenticateAsync(options.Username!, options.Password ?? "", timeout.Token);
        }
        catch (Exception error) when (!cancellationToken.IsCancellationRequested)
        {
            client.Dispose();
            socket.Dispose();
            if (error is OperationCanceledException)
                error = new TimeoutException($"no connection to {options.Host}:{options.Port} within {options.ConnectTimeout}", error);
            return SmtpOutcomes.Classify(error, SmtpStage.Connect);
        }
        catch
        {
            client.Dispose();
            socket.Dispose();
            throw;
        }
        // DATA, never BDAT: ion's messages are never binary (attachments go as base64), so BDAT would gain nothing,
        // and only with DATA can the end of a message wait for the record before it (WaitingBody).
        client.Capabilities &= ~(SmtpCapabilities.Chunking | SmtpCapabilities.BinaryMime);
        _client = client;
        _socket = socket;
        _offersSmtpUtf8 = (client.Capabilities & SmtpCapabilities.UTF8) != 0;
        _lastUsed = time.GetTimestamp();
        return null;
    }

    public async ValueTask DisposeAsync() => await ResetAsync();

    /// <summary>Between messages the relay has nothing to say: anything readable (a 421 before it hangs up, or the
    /// end of the stream) means it has dropped or is dropping the connection. Found now, it costs a reconnect;
    /// found mid-message, it would cost the message an attempt.</summary>
    private bool ClosedByRelay()
    {
        try
        {
            return _socket is null || _socket.Poll(0, SelectMode.SelectRead);
        }
        catch (Exception error) when (error is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }

    private async Task ResetAsync(bool quit = true)
    {
        if (_client is null)
            return;
        var client = _client;
        var socket = _socket;
        _client = null;
        _socket = null;
        try
        {
            if (quit && client.IsConnected)
            {
                using var courtesy = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await client.DisconnectAsync(true, courtesy.Token);
            }
        }
        catch (Exception error) when (error is IOException or OperationCanceledException or SmtpProtocolException or SmtpCommandException or ObjectDisposedException)
        {
            // QUIT is a courtesy; the connection is being dropped either way.
        }
        finally
        {
            client.Dispose();
            socket?.Dispose();
        }
    }

    private static SecureSocketOptions SocketOptions(SmtpSecurity security) => security switch
    {
        SmtpSecurity.StartTls => SecureSocketOptions.StartTls,
        SmtpSecurity.SslOnConnect => SecureSocketOptions.SslOnConnect,
        SmtpSecurity.None => SecureSocketOptions.None,
        _ => throw new ArgumentOutOfRangeException(nameof(security)),
    };

    private static bool MatchesPin(X509Certificate? certificate, string expectedSha256Hex)
    {
        if (certificate is null)
            return false;
        using var x509 = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return string.Equals(x509.GetCertHashString(HashAlgorithmName.SHA256), expectedSha256Hex, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>MailKit's client, told to collect each refused recipient's answer instead of giving up on the whole
    /// message at the first one (MailKit's documented hook for exactly this).</summary>
    private sealed class RecipientCollectingClient : SmtpClient
    {
        private readonly Dictionary<MailboxAddress, string> _addresses = new(ReferenceEqualityComparer.Instance);

        /// <summary>The refused recipients of the current transaction, by canonical address.</summary>
        public Dictionary<string, SmtpAnswer> Refused { get; } = new(StringComparer.Ordinal);

        public bool NoneAccepted { get; private set; }

        /// <summary>The mailboxes to give MailKit for <paramref name="recipients"/>, remembered so that its callbacks,
        /// which hand back MailKit's own (IDN-decoded) mailbox, are told apart by identity, not by spelling.</summary>
        public List<MailboxAddress> StartTransaction(IReadOnlyList<string> recipients)
        {
            _addresses.Clear();
            Refused.Clear();
            NoneAccepted = false;
            List<MailboxAddress> mailboxes = [];
            foreach (var recipient in recipients)
            {
                var mailbox = new MailboxAddress("", recipient);
                _addresses[mailbox] = recipient;
                mailboxes.Add(mailbox);
            }
            return mailboxes;
        }

        protected override void OnRecipientNotAccepted(MimeMessage message, MailboxAddress mailbox, SmtpResponse response) =>
            Refused[_addresses[mailbox]] = SmtpOutcomes.Classify((int)response.StatusCode, response.Response, SmtpStage.RcptTo);

        // Not throwing lets MailKit end with its own SmtpCommandException and RSET, keeping the connection.
        protected override void OnNoRecipientsAccepted(MimeMessage message) => NoneAccepted = true;
    }
}
