using System.Net.Sockets;
using System.Text.RegularExpressions;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;

namespace Ion.Delivery;

/// <summary>Where in a conversation with the relay an answer came.</summary>
public enum SmtpStage
{
    /// <summary>Connecting, TLS, greeting, EHLO, AUTH: a failure here is the relay's, not the message's.</summary>
    Connect,
    /// <summary>MAIL FROM: a refusal is of ion's sender, which is ion's configuration.</summary>
    MailFrom,
    /// <summary>RCPT TO: about one recipient.</summary>
    RcptTo,
    /// <summary>DATA and the message itself.</summary>
    Data,
}

/// <summary>The one place where SMTP replies and MailKit's exceptions become classified answers.</summary>
public static partial class SmtpOutcomes
{
    // Replies that say "too fast" rather than "this message": SES "454 4.7.0 Throttling failure: Maximum sending
    // rate exceeded", Office 365 "451 4.7.650 … temporarily rate limited", "421 … too many messages/connections".
    [GeneratedRegex(@"throttl|rate[ -]?limit|rate exceeded|sending rate|message rate|too many (messages|mails|emails|connections)|exceeded .*(rate|quota)|slow down", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ThrottleText();

    // "550 5.7.1 Relaying denied", "554 5.7.1 <x>: Relay access denied", "550 Unable to relay", "not permitted to relay";
    // and refusals of ion's own host, whoever the mail is for: "554 5.7.1 Client host [192.0.2.1] blocked using
    // zen.spamhaus.org", "Client host rejected".
    [GeneratedRegex(@"relay(ing)? (access )?(denied|not permitted|prohibited)|unable to relay|not permitted to relay|not allowed to relay|client host .*(blocked|rejected)|blocked using", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex RelayDeniedText();

    /// <summary>Classifies a reply the relay gave at <paramref name="stage"/>.</summary>
    public static SmtpAnswer Classify(int code, string text, SmtpStage stage)
    {
        ArgumentNullException.ThrowIfNull(text);
        var enhanced = SmtpReply.ParseEnhancedCode(text);
        return new SmtpAnswer(KindOf(code, enhanced, text, stage), code, enhanced, text.Trim());
    }

    private static OutcomeKind KindOf(int code, string? enhanced, string text, SmtpStage stage)
    {
        if (code is >= 200 and < 300)
            return OutcomeKind.Accepted;
        if (stage == SmtpStage.Connect)
            return OutcomeKind.RelayUnavailable;
        // 530 "authentication required" / "must issue a STARTTLS command first", 535/538: ion's own settings are
        // wrong, whatever message it tries.
        if (code is 530 or 535 or 538)
            return OutcomeKind.RelayRefusesIon;
        if (code is >= 400 and < 500)
        {
            if (IsThrottling(code, enhanced, text))
                return OutcomeKind.Throttled;
            // The basic code wins: a 4xx is transient even with a 5.x.x enhanced code (RFC 3463 section 2).
            return OutcomeKind.Transient;
        }
        if (code is >= 500 and < 600)
        {
            if (stage == SmtpStage.MailFrom || RelayDeniedText().IsMatch(text))
                return OutcomeKind.RelayRefusesIon;
            // X.2.2 is "mailbox full": RFC 3463 calls it persistent transient, whatever the basic code (552 5.2.2).
            if (enhanced is { } e && e.EndsWith(".2.2", StringComparison.Ordinal))
                return OutcomeKind.Transient;
            return OutcomeKind.Permanent;
        }
        // Not an SMTP reply code at all: something is badly wrong on the other side; try again later.
        return OutcomeKind.Transient;
    }

    private static bool IsThrottling(int code, string? enhanced, string text) =>
        ThrottleText().IsMatch(text)
        // 421 4.7.x is the relay closing the channel for policy, i.e. rate (Gmail "421 4.7.0 Try again later,
        // closing connection"); 454 4.7.0 after connecting is SES's throttle (at STARTTLS it would be a connect failure).
        || (code is 421 or 454 && enhanced is { } e && e.StartsWith("4.7.", StringComparison.Ordinal));

    /// <summary>Classifies an error MailKit raised at <paramref name="stage"/>.</summary>
    public static SmtpAnswer Classify(Exception error, SmtpStage stage)
    {
        ArgumentNullException.ThrowIfNull(error);
        if (stage == SmtpStage.Connect)
            return Unavailable(error);

        return error switch
        {
            SmtpCommandException e => Classify((int)e.StatusCode, e.Message, StageOf(e, stage)),
            // MailKit raises this for a 530 to MAIL, RCPT or DATA ("530 5.7.0 Must issue a STARTTLS command first").
            ServiceNotAuthenticatedException => new SmtpAnswer(OutcomeKind.RelayRefusesIon, 530, SmtpReply.ParseEnhancedCode(error.Message), error.Message),
            // Authentication or TLS trouble after connecting, or a send without a live connection: the relay's state.
            AuthenticationException or SslHandshakeException or ServiceNotConnectedException => Unavailable(error),
            // The connection dropped or stalled mid-message: the relay may or may not have the message; retrying
            // risks a duplicate, which the stable Message-ID makes visible downstream.
            SmtpProtocolException or IOException or SocketException
                => new SmtpAnswer(OutcomeKind.Transient, null, null, $"connection lost: {error.Message}"),
            TimeoutException or OperationCanceledException
                => new SmtpAnswer(OutcomeKind.Transient, null, null, $"timeout: {error.Message}"),
            _ => new SmtpAnswer(OutcomeKind.Transient, null, null, $"{error.GetType().Name}: {error.Message}"),
        };
    }

    // MailKit says which command was refused; that, not where ion was in its own code, is the stage.
    private static SmtpStage StageOf(SmtpCommandException error, SmtpStage fallback) => error.ErrorCode switch
    {
        SmtpErrorCode.SenderNotAccepted => SmtpStage.MailFrom,
        SmtpErrorCode.RecipientNotAccepted => SmtpStage.RcptTo,
        SmtpErrorCode.MessageNotAccepted => SmtpStage.Data,
        _ => fallback,
    };

    private static string FirstLine(string text) => text.Split('\n', 2)[0].TrimEnd('\r', '.');

    private static string CertificateErrors(string text)
    {
        var bullets = text.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith('•') && !l.EndsWith(':')).Select(l => l.TrimStart('•', ' '));
        var joined = string.Join("; ", bullets);
        return joined.Length == 0 ? "" : $" ({joined})";
    }

    private static SmtpAnswer Unavailable(Exception error)
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
        return new SmtpAnswer(OutcomeKind.RelayUnavailable, code, null, detail);
    }
}
