using System.Net.Sockets;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;

namespace Ion.Delivery;

/// <summary>Where in a conversation with the relay an error happened.</summary>
public enum SmtpStage
{
    /// <summary>Connecting, TLS, greeting, EHLO, AUTH: a failure here is the relay's, not the message's.</summary>
    Connect,
    /// <summary>MAIL, RCPT, DATA and the message itself.</summary>
    Send,
}

/// <summary>The one place where MailKit's exceptions become delivery outcomes.</summary>
public static class SmtpOutcomes
{
    public static DeliveryOutcome Classify(Exception error, SmtpStage stage)
    {
        ArgumentNullException.ThrowIfNull(error);
        if (stage == SmtpStage.Connect)
            return Unavailable(error);

        return error switch
        {
            // 421 is the relay closing the channel (shutting down, throttling the connection): not this message's fault.
            SmtpCommandException { StatusCode: SmtpStatusCode.ServiceNotAvailable } e => FromCommand(e, OutcomeKind.RelayUnavailable),
            SmtpCommandException e when IsPermanent(e) => FromCommand(e, OutcomeKind.Rejected),
            SmtpCommandException e => FromCommand(e, OutcomeKind.RetryLater),
            // Authentication or TLS trouble after connecting, or a send without a live connection: the relay's state.
            AuthenticationException or SslHandshakeException or ServiceNotAuthenticatedException or ServiceNotConnectedException
                => Unavailable(error),
            // The connection dropped or stalled mid-message: the relay may or may not have the message; retrying
            // risks a duplicate, which the stable Message-ID makes visible downstream.
            SmtpProtocolException or IOException or SocketException
                => new DeliveryOutcome(OutcomeKind.RetryLater, null, null, $"connection lost: {error.Message}"),
            TimeoutException or OperationCanceledException
                => new DeliveryOutcome(OutcomeKind.RetryLater, null, null, $"timeout: {error.Message}"),
            _ => new DeliveryOutcome(OutcomeKind.RetryLater, null, null, $"{error.GetType().Name}: {error.Message}"),
        };
    }

    private static bool IsPermanent(SmtpCommandException e)
    {
        var enhanced = SmtpReply.ParseEnhancedCode(e.Message);
        return (int)e.StatusCode >= 500 || enhanced?.StartsWith('5') == true;
    }

    private static string FirstLine(string text) => text.Split('\n', 2)[0].TrimEnd('\r', '.');

    private static string CertificateErrors(string text)
    {
        var bullets = text.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith('•') && !l.EndsWith(':')).Select(l => l.TrimStart('•', ' '));
        var joined = string.Join("; ", bullets);
        return joined.Length == 0 ? "" : $" ({joined})";
    }

    private static DeliveryOutcome FromCommand(SmtpCommandException e, OutcomeKind kind) =>
        new(kind, (int)e.StatusCode, SmtpReply.ParseEnhancedCode(e.Message), e.Message);

    private static DeliveryOutcome Unavailable(Exception error)
    {
        var detail = error switch
        {
            SmtpCommandException e => $"{(int)e.StatusCode} {e.Message}",
            SocketException e => $"cannot connect: {e.Message}",
            // MailKit's TLS message is a page of advice; the first line and the validation errors are what matter.
            SslHandshakeException => $"TLS failed: {FirstLine(error.Message)}{CertificateErrors(error.Message)}",
            AuthenticationException => $"authentication failed: {FirstLine(error.Message)}",
            _ => $"{error.GetType().Name}: {FirstLine(error.Message)}",
        };
        var code = error is SmtpCommandException c ? (int?)(int)c.StatusCode : null;
        return new DeliveryOutcome(OutcomeKind.RelayUnavailable, code, null, detail);
    }
}
