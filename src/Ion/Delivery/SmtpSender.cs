using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace Ion.Delivery;

/// <summary>
/// One connection to the relay, kept open across messages (one per worker slot). MailKit pipelines MAIL/RCPT
/// by itself when the relay offers PIPELINING. Not thread-safe: one slot, one sender.
/// </summary>
public sealed class SmtpSender(SmtpOptions options, TimeProvider time) : IAsyncDisposable
{
    private SmtpClient? _client;
    private Socket? _socket;
    private long _lastUsed;

    /// <summary>Sends one message; every failure comes back as an outcome, never as an exception
    /// (except cancellation of <paramref name="cancellationToken"/>).</summary>
    public async Task<DeliveryOutcome> SendAsync(MimeMessage message, CancellationToken cancellationToken)
    {
        var connectFailure = await ConnectAsync(cancellationToken);
        if (connectFailure is not null)
            return connectFailure;
        try
        {
            var reply = await _client!.SendAsync(message, cancellationToken);
            _lastUsed = time.GetTimestamp();
            return DeliveryOutcome.Sent(reply);
        }
        catch (Exception error) when (!cancellationToken.IsCancellationRequested)
        {
            var outcome = SmtpOutcomes.Classify(error, SmtpStage.Send);
            // After a refused command MailKit has reset the transaction and the connection is still good; after
            // anything else its state is unknown, so start afresh next time.
            if (error is not SmtpCommandException || outcome.Kind == OutcomeKind.RelayUnavailable)
                await ResetAsync();
            return outcome;
        }
    }

    /// <summary>Makes sure there is a usable, authenticated connection. Returns null when there is, else why not.</summary>
    public async Task<DeliveryOutcome?> ConnectAsync(CancellationToken cancellationToken)
    {
        if (_client is { IsConnected: true } && time.GetElapsedTime(_lastUsed) < options.IdleTimeout && !ClosedByRelay())
            return null;
        await ResetAsync();

        var client = new SmtpClient
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
        _client = client;
        _socket = socket;
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

    private async Task ResetAsync()
    {
        if (_client is null)
            return;
        var client = _client;
        var socket = _socket;
        _client = null;
        _socket = null;
        try
        {
            if (client.IsConnected)
            {
                using var quit = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await client.DisconnectAsync(true, quit.Token);
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
}
