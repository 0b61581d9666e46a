using System.Globalization;

namespace Ion.Delivery;

public enum OutcomeKind
{
    /// <summary>The relay took it (2xx).</summary>
    Accepted,
    /// <summary>A temporary failure of this message or recipient (4xx, timeout, connection lost mid-message): retried
    /// later, and counted as an attempt.</summary>
    Transient,
    /// <summary>A permanent failure of this message or recipient (5xx; the basic code wins over the enhanced one, but
    /// X.2.2 "mailbox full" is transient): not retried.</summary>
    Permanent,
    /// <summary>The relay says ion sends too fast: slow down; no attempt counted.</summary>
    Throttled,
    /// <summary>The relay refuses ion itself, not the message (authentication or STARTTLS required, relaying denied,
    /// ion's sender refused): pause delivery; no attempt counted.</summary>
    RelayRefusesIon,
    /// <summary>No usable connection (refused, TLS, greeting, EHLO, AUTH failed): pause delivery; no attempt counted.</summary>
    RelayUnavailable,
    /// <summary>Not asked at all: the recipient is on the suppression list (the text says why). Not an attempt.</summary>
    Suppressed,
}

/// <summary>One answer of the relay (or the error in its place), classified. <see cref="Text"/> is the server's text
/// or the error.</summary>
public sealed record SmtpAnswer(OutcomeKind Kind, int? Code, string? EnhancedCode, string Text)
{
    public static SmtpAnswer Accepted(string text) => new(OutcomeKind.Accepted, 250, SmtpReply.ParseEnhancedCode(text), text);

    /// <summary>About the relay, not the message: no attempt is counted, and delivery pauses or slows down.</summary>
    public bool IsAboutTheRelay => Kind is OutcomeKind.Throttled or OutcomeKind.RelayRefusesIon or OutcomeKind.RelayUnavailable;

    /// <summary>One line for logs and dead letters, e.g. <c>550 5.1.1 No such user</c>.</summary>
    public string Reply => Code is { } code && !Text.StartsWith(code.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
        ? $"{code} {Text}"
        : Text;
}

/// <summary>The relay's answer about one recipient: its refusal at RCPT, or, once accepted there, the answer to the
/// message data.</summary>
public sealed record RecipientAnswer(string Address, SmtpAnswer Answer);

/// <summary>What one send came to: an answer for every recipient it was asked to send to, and the answer that
/// sums the transaction up (the data's 250, or the failure that ended it) for the log.</summary>
public sealed record DeliveryOutcome(SmtpAnswer Summary, IReadOnlyList<RecipientAnswer> Recipients)
{
    /// <summary>The same answer for every recipient: a failure before any recipient could be told apart.</summary>
    public static DeliveryOutcome ForAll(SmtpAnswer answer, IEnumerable<string> recipients) =>
        new(answer, [.. recipients.Select(r => new RecipientAnswer(r, answer))]);
}
