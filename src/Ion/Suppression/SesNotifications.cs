using System.Text.Json;

namespace Ion.Suppression;

/// <summary>What a body that should be an SES notification turned out to be.</summary>
public abstract record SesMessage
{
    private SesMessage()
    {
    }

    /// <summary>An SES notification (bounce, complaint, or another kind whose recipients are all ignored).</summary>
    public sealed record Notification(FeedbackReport Report) : SesMessage;

    /// <summary>SNS asking to confirm a subscription (<c>SubscriptionConfirmation</c>) or saying one ended
    /// (<c>UnsubscribeConfirmation</c>).</summary>
    public sealed record Subscription(string Type, string? TopicArn, string? SubscribeUrl) : SesMessage;

    /// <summary>Not something ion can read, and why (never quoting the body).</summary>
    public sealed record Unreadable(string Problem) : SesMessage;
}

/// <summary>
/// Reads Amazon SES's notifications, as AWS documents them: identity notifications (<c>notificationType</c>) and
/// configuration-set events (<c>eventType</c>), raw or inside SNS's envelope (<c>{"Type": "Notification", "Message":
/// "…"}</c>, what a queue subscribed without raw delivery receives and what an HTTP(S) subscription posts).
/// Only a permanent bounce the rules agree with, and a complaint, suppress; a transient or undetermined bounce, a
/// delivery and every other kind are ignored.
/// </summary>
public static class SesNotifications
{
    /// <summary>SNS carries at most 256 KiB; the envelope and escaping add to it.</summary>
    public const int MaxBytes = 1024 * 1024;

    private static readonly JsonDocumentOptions Options = new() { MaxDepth = 32 };

    public static SesMessage Read(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        try
        {
            using var document = JsonDocument.Parse(text, Options);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                return new SesMessage.Unreadable("the body is not a JSON object");
            if (String(root, "Type") is not { } snsType)
                return ReadSes(root);
            switch (snsType)
            {
                case "Notification":
                    if (String(root, "Message") is not { } message)
                        return new SesMessage.Unreadable("an SNS notification without a Message string");
                    using (var inner = JsonDocument.Parse(message, Options))
                    {
                        return inner.RootElement.ValueKind == JsonValueKind.Object
                            ? ReadSes(inner.RootElement)
                            : new SesMessage.Unreadable("the SNS notification's Message is not a JSON object");
                    }
                case "SubscriptionConfirmation" or "UnsubscribeConfirmation":
                    return new SesMessage.Subscription(snsType, String(root, "TopicArn"), String(root, "SubscribeURL"));
                default:
                    return new SesMessage.Unreadable($"an SNS message of an unknown Type ({Quote(snsType)})");
            }
        }
        catch (JsonException error)
        {
            // System.Text.Json says where, and shows at most a character of the input.
            return new SesMessage.Unreadable($"not JSON: {error.Message}");
        }
    }

    private static SesMessage ReadSes(JsonElement notification)
    {
        var type = String(notification, "notificationType") ?? String(notification, "eventType");
        if (type is null)
            return new SesMessage.Unreadable("neither notificationType nor eventType is set: not an SES notification");
        var tally = new FeedbackTally("ses");
        var messageId = MessageIdOf(notification);
        switch (type)
        {
            case "Bounce":
                if (Object(notification, "bounce") is not { } bounce || Array(bounce, "bouncedRecipients") is not { } bounced)
                    return new SesMessage.Unreadable("a Bounce notification without bounce.bouncedRecipients");
                var bounceType = String(bounce, "bounceType") ?? "Undetermined";
                var subType = String(bounce, "bounceSubType");
                foreach (var recipient in bounced)
                {
                    var status = String(recipient, "status");
                    var diagnostic = String(recipient, "diagnosticCode");
                    if (bounceType == "Permanent" && BounceSuppresses(subType, status, diagnostic))
                    {
                        tally.Suppress(String(recipient, "emailAddress"), SuppressionReason.Bounce,
                            $"SES bounce {bounceType}/{subType ?? "General"}: {status} {diagnostic}", messageId);
                    }
                    else
                    {
                        tally.Ignore();
                    }
                }
                break;
            case "Complaint":
                if (Object(notification, "complaint") is not { } complaint || Array(complaint, "complainedRecipients") is not { } complained)
                    return new SesMessage.Unreadable("a Complaint notification without complaint.complainedRecipients");
                var feedbackType = String(complaint, "complaintFeedbackType");
                foreach (var recipient in complained)
                {
                    // The recipient's provider saying it was not spam after all takes nothing back, and adds nothing.
                    if (feedbackType == "not-spam")
                        tally.Ignore();
                    else
                        tally.Suppress(String(recipient, "emailAddress"), SuppressionReason.Complaint, $"SES complaint ({feedbackType ?? "no feedback type"})", messageId);
                }
                break;
            default:
                // Delivery, Send, Open, DeliveryDelay…: nobody to suppress.
                tally.Ignore(Object(notification, "mail") is { } mail && Array(mail, "destination") is { } destination ? destination.Count : 0);
                break;
        }
        return new SesMessage.Notification(tally.Report());
    }

    // SES's subtypes that say the address itself is the problem, whatever code comes with them: NoEmail (it does not
    // exist), Suppressed and OnAccountSuppressionList (SES will not send to it, having seen it bounce). Otherwise a
    // code, where the bounce carries one, is judged as ion judges a refusal; a permanent bounce without one is taken at
    // SES's word.
    private static bool BounceSuppresses(string? subType, string? status, string? diagnostic) =>
        subType is "NoEmail" or "Suppressed" or "OnAccountSuppressionList" || (SuppressionRules.Suppresses(status, diagnostic) ?? true);

    // The email's own Message-ID, as SES read it from the headers (not SES's mail.messageId, which only SES knows).
    private static string? MessageIdOf(JsonElement notification)
    {
        if (Object(notification, "mail") is not { } mail)
            return null;
        if (Object(mail, "commonHeaders") is { } common && String(common, "messageId") is { } header)
            return header.Trim().Trim('<', '>');
        foreach (var field in Array(mail, "headers") ?? [])
        {
            if (String(field, "name") is { } name && name.Equals("Message-ID", StringComparison.OrdinalIgnoreCase) && String(field, "value") is { } value)
                return value.Trim().Trim('<', '>');
        }
        return null;
    }

    private static string? String(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    private static JsonElement? Object(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Object
            ? value
            : null;

    private static List<JsonElement>? Array(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Array
            ? [.. value.EnumerateArray()]
            : null;

    private static string Quote(string value) => value.Length <= 40 && value.All(c => char.IsAsciiLetterOrDigit(c)) ? $"'{value}'" : "not a plain name";
}
