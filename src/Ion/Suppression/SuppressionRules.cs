using System.Globalization;
using System.Text.RegularExpressions;
using Ion.Delivery;

namespace Ion.Suppression;

/// <summary>Which refusals put an address on the suppression list: those that say the address itself cannot take mail,
/// never a policy or content refusal (spam, reputation, size, relaying), never a full mailbox. The same judgement
/// applies to a refusal ion saw and to one reported later (a DSN, an SES bounce).</summary>
public static partial class SuppressionRules
{
    // RFC 3463: X.1.1 bad destination mailbox, X.1.2 bad destination system, X.1.3 bad mailbox syntax, X.1.6 mailbox
    // moved with no forwarding address, X.1.10 null MX (RFC 7505), X.2.1 mailbox disabled. X.7.x is policy, X.2.2 full
    // (transient), X.3/X.4/X.5/X.6 the system, the network, the protocol, the content.
    private static readonly HashSet<string> AddressCodes = ["5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1"];

    /// <summary>Whether the relay's <paramref name="answer"/> about a recipient means the address is gone for good.</summary>
    public static bool Suppresses(SmtpAnswer answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        if (answer.Kind != OutcomeKind.Permanent || answer.Code is not (>= 500 and < 600))
            return false;
        if (answer.EnhancedCode is { } enhanced)
            return AddressCodes.Contains(enhanced);
        // A relay without enhanced codes: only the usual words for a mailbox that does not exist.
        return answer.Code is 550 or 551 or 553 && NoSuchMailbox().IsMatch(answer.Text);
    }

    /// <summary>Whether a report about a recipient that failed (RFC 3464: its <c>Status</c>, e.g. <c>5.1.1</c>, and its
    /// <c>Diagnostic-Code</c>, e.g. <c>smtp; 550 5.1.1 User unknown</c>) means the address is gone for good; null when
    /// the report gives neither.</summary>
    public static bool? Suppresses(string? status, string? diagnosticCode)
    {
        var code = SmtpReply.ParseEnhancedCode(status);
        // 2.x.x delivered, 4.x.x still trying: whatever the words, not gone.
        if (code is not null && code[0] != '5')
            return false;
        // A precise code decides; 5.0.0 says only "failed", so the remote server's own words do.
        if (code is not null && code != "5.0.0")
            return AddressCodes.Contains(code);
        if (string.IsNullOrWhiteSpace(diagnosticCode))
            return code is null ? null : false;
        // "smtp; 550 5.1.1 <bob@y.example>: Recipient address rejected": the reply, judged as if ion had been given it.
        var semicolon = diagnosticCode.IndexOf(';', StringComparison.Ordinal);
        var type = semicolon < 0 ? "" : diagnosticCode[..semicolon].Trim();
        var text = diagnosticCode[(semicolon + 1)..].Trim();
        if (type.Equals("smtp", StringComparison.OrdinalIgnoreCase) && SmtpReplyText().Match(text) is { Success: true } reply)
        {
            return Suppresses(SmtpOutcomes.Classify(int.Parse(reply.Groups[1].Value, CultureInfo.InvariantCulture),
                reply.Groups[2].Value, SmtpStage.RcptTo));
        }
        return NoSuchMailbox().IsMatch(text);
    }

    [GeneratedRegex(@"^([2-5]\d\d)[ -]?(.*)$", RegexOptions.CultureInvariant | RegexOptions.Singleline)]
    private static partial Regex SmtpReplyText();

    [GeneratedRegex(@"\b(no such (user|mailbox|recipient)|user unknown|unknown user|(mailbox|user|recipient|address) (does not|doesn't) exist|mailbox not found|recipient not found|invalid (mailbox|recipient))\b",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex NoSuchMailbox();
}
