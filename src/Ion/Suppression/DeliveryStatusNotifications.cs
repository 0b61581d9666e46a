using System.Diagnostics.CodeAnalysis;
using MimeKit;

namespace Ion.Suppression;

/// <summary>
/// Reads a delivery status notification (RFC 3464), the bounce mail a server sends back when it gave up later: a
/// <c>multipart/report; report-type=delivery-status</c> whose <c>message/delivery-status</c> part has one group of fields
/// per recipient (<c>Final-Recipient</c>, <c>Action</c>, <c>Status</c>, <c>Diagnostic-Code</c>). A recipient whose
/// Action is <c>failed</c> is suppressed when <see cref="SuppressionRules"/> agree; delayed, delivered, relayed and
/// expanded ones are ignored. The original email's Message-ID comes from the report's <c>text/rfc822-headers</c> or
/// <c>message/rfc822</c> part.
/// </summary>
public static class DeliveryStatusNotifications
{
    /// <summary>Reads the whole report mail, headers and body, as a mailbox holds it.</summary>
    public static bool TryRead(Stream mail, [NotNullWhen(true)] out FeedbackReport? report, [NotNullWhen(false)] out string? problem)
    {
        ArgumentNullException.ThrowIfNull(mail);
        report = null;
        MimeMessage message;
        try
        {
            message = MimeMessage.Load(mail);
        }
        catch (FormatException)
        {
            problem = "not a MIME message (RFC 5322 headers and a body)";
            return false;
        }
        var deliveryReport = Enumerate(message.Body).OfType<MultipartReport>()
            .FirstOrDefault(r => string.Equals(r.ReportType, "delivery-status", StringComparison.OrdinalIgnoreCase));
        if (deliveryReport is null)
        {
            problem = "it has no multipart/report; report-type=delivery-status part (RFC 3464)";
            return false;
        }
        if (deliveryReport.OfType<MessageDeliveryStatus>().FirstOrDefault() is not { } status)
        {
            problem = "its multipart/report has no message/delivery-status part";
            return false;
        }
        var groups = status.StatusGroups;
        if (groups.Count < 2)
        {
            problem = "its message/delivery-status part names no recipient";
            return false;
        }

        var reportingMta = Value(groups[0]["Reporting-MTA"]);
        var messageId = deliveryReport.OfType<MessagePart>().Select(p => p.Message?.MessageId).FirstOrDefault(id => id is not null);
        var tally = new FeedbackTally("dsn");
        foreach (var recipient in groups.Skip(1))
        {
            var action = recipient["Action"]?.Trim();
            var code = recipient["Status"]?.Trim();
            var diagnostic = recipient["Diagnostic-Code"];
            if (!string.Equals(action, "failed", StringComparison.OrdinalIgnoreCase) || SuppressionRules.Suppresses(code, diagnostic) != true)
            {
                tally.Ignore();
                continue;
            }
            // Original-Recipient is the address ion gave (when the servers passed ORCPT on); Final-Recipient the one the
            // failing server saw, perhaps after an alias.
            var address = Address(recipient["Original-Recipient"]) ?? Address(recipient["Final-Recipient"]);
            tally.Suppress(address, SuppressionReason.Bounce, $"DSN{(reportingMta is null ? "" : $" from {reportingMta}")}: {code} {diagnostic}", messageId);
        }
        report = tally.Report();
        problem = null;
        return true;
    }

    private static IEnumerable<MimeEntity> Enumerate(MimeEntity? entity)
    {
        if (entity is null)
            yield break;
        yield return entity;
        if (entity is Multipart multipart)
        {
            foreach (var part in multipart.SelectMany(Enumerate))
                yield return part;
        }
    }

    // "rfc822; bob@y.example" (RFC 3464 section 2.3.2), or "utf-8; …" (RFC 6533) for an internationalised one.
    private static string? Address(string? field)
    {
        if (field is null)
            return null;
        var semicolon = field.IndexOf(';', StringComparison.Ordinal);
        if (semicolon < 0)
            return null;
        var type = field[..semicolon].Trim();
        return type.Equals("rfc822", StringComparison.OrdinalIgnoreCase) || type.Equals("utf-8", StringComparison.OrdinalIgnoreCase)
            ? field[(semicolon + 1)..].Trim()
            : null;
    }

    // "dns; mail.example.com"
    private static string? Value(string? field) =>
        field is null ? null : field[(field.IndexOf(';', StringComparison.Ordinal) + 1)..].Trim();
}
