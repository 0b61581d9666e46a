using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ion.Tests.Suppression;

/// <summary>Reports shaped as the real ones are: SES notifications as AWS documents them (Amazon SES Developer Guide,
/// "Contents of notifications"), SNS's envelope around them, and Postfix's bounce mail.</summary>
public static class FeedbackSamples
{
    /// <summary>An SES bounce notification for <paramref name="recipients"/> (address, status, diagnostic code).</summary>
    public static string SesBounce(string bounceType, string bounceSubType, string? messageId, params (string Address, string? Status, string? Diagnostic)[] recipients)
    {
        var bounced = new JsonArray();
        foreach (var (address, status, diagnostic) in recipients)
        {
            var recipient = new JsonObject { ["emailAddress"] = address };
            if (status is not null)
            {
                recipient["action"] = "failed";
                recipient["status"] = status;
            }
            if (diagnostic is not null)
                recipient["diagnosticCode"] = diagnostic;
            bounced.Add(recipient);
        }
        return new JsonObject
        {
            ["notificationType"] = "Bounce",
            ["bounce"] = new JsonObject
            {
                ["bounceType"] = bounceType,
                ["bounceSubType"] = bounceSubType,
                ["bouncedRecipients"] = bounced,
                ["timestamp"] = "2026-03-10T10:00:01.237Z",
                ["feedbackId"] = "0100018e2a3b4c5d-11112222-3333-4444-5555-666677778888-000000",
                ["remoteMtaIp"] = "192.0.2.25",
                ["reportingMTA"] = "dsn; a8-70.smtp-out.amazonses.com",
            },
            ["mail"] = Mail(messageId, recipients.Select(r => r.Address)),
        }.ToJsonString();
    }

    public static string SesComplaint(string? feedbackType, string? messageId, params string[] recipients) => new JsonObject
    {
        ["notificationType"] = "Complaint",
        ["complaint"] = new JsonObject
        {
            ["userAgent"] = "AnyCompany Feedback Loop (V0.01)",
            ["complainedRecipients"] = new JsonArray([.. recipients.Select(r => (JsonNode)new JsonObject { ["emailAddress"] = r })]),
            ["complaintFeedbackType"] = feedbackType,
            ["arrivalDate"] = "2026-03-10T10:00:01.237Z",
            ["timestamp"] = "2026-03-10T10:00:02.000Z",
            ["feedbackId"] = "0100018e2a3b4c5d-aaaabbbb-cccc-dddd-eeee-ffff00001111-000000",
        },
        ["mail"] = Mail(messageId, recipients),
    }.ToJsonString();

    public static string SesDelivery(params string[] recipients) => new JsonObject
    {
        ["notificationType"] = "Delivery",
        ["mail"] = Mail(null, recipients),
        ["delivery"] = new JsonObject
        {
            ["timestamp"] = "2026-03-10T10:00:01.237Z",
            ["processingTimeMillis"] = 546,
            ["recipients"] = new JsonArray([.. recipients.Select(r => (JsonNode)r)]),
            ["smtpResponse"] = "250 ok:  Message 64111812 accepted",
            ["reportingMTA"] = "a8-70.smtp-out.amazonses.com",
        },
    }.ToJsonString();

    /// <summary>What SNS delivers to a queue subscribed without raw delivery, and posts to an HTTP(S) subscription.</summary>
    public static string SnsEnvelope(string message, string type = "Notification") => new JsonObject
    {
        ["Type"] = type,
        ["MessageId"] = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        ["TopicArn"] = "arn:aws:sns:us-east-1:123456789012:ses-feedback",
        ["Message"] = message,
        ["Timestamp"] = "2026-03-10T10:00:03.000Z",
        ["SignatureVersion"] = "1",
        ["Signature"] = "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q=",
        ["SigningCertURL"] = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
        ["UnsubscribeURL"] = "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:123456789012:ses-feedback:c9135db0",
    }.ToJsonString();

    public static string SnsSubscriptionConfirmation() => new JsonObject
    {
        ["Type"] = "SubscriptionConfirmation",
        ["MessageId"] = "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        ["Token"] = "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736",
        ["TopicArn"] = "arn:aws:sns:us-east-1:123456789012:ses-feedback",
        ["Message"] = "You have chosen to subscribe to the topic arn:aws:sns:us-east-1:123456789012:ses-feedback.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
        ["SubscribeURL"] = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:ses-feedback&Token=2336412f37",
        ["Timestamp"] = "2026-03-10T10:00:00.000Z",
        ["SignatureVersion"] = "1",
    }.ToJsonString();

    private static JsonObject Mail(string? messageId, IEnumerable<string> destination)
    {
        var to = string.Join(", ", destination);
        var headers = new JsonArray
        {
            new JsonObject { ["name"] = "From", ["value"] = "ion@test.example" },
            new JsonObject { ["name"] = "To", ["value"] = to },
            new JsonObject { ["name"] = "Subject", ["value"] = "Hello" },
        };
        var common = new JsonObject { ["from"] = new JsonArray("ion@test.example"), ["to"] = new JsonArray(to), ["subject"] = "Hello" };
        if (messageId is not null)
        {
            headers.Add(new JsonObject { ["name"] = "Message-ID", ["value"] = $"<{messageId}>" });
            common["messageId"] = $"<{messageId}>";
        }
        return new JsonObject
        {
            ["timestamp"] = "2026-03-10T09:59:58.000Z",
            ["source"] = "ion@test.example",
            ["sourceArn"] = "arn:aws:ses:us-east-1:123456789012:identity/test.example",
            ["sendingAccountId"] = "123456789012",
            ["messageId"] = "0100018e2a3b4c5d-99998888-7777-6666-5555-444433332222-000000",
            ["destination"] = new JsonArray([.. destination.Select(d => (JsonNode)d)]),
            ["headersTruncated"] = false,
            ["headers"] = headers,
            ["commonHeaders"] = common,
        };
    }

    /// <summary>A bounce as Postfix writes it (bounce(8)'s multipart/report: the text for people, the
    /// message/delivery-status, the returned message's headers). <paramref name="originalHeaders"/> are those of the
    /// email that bounced, CRLF or LF lines.</summary>
    public static string PostfixBounce(string originalHeaders, params (string Address, string Action, string Status, string Diagnostic)[] recipients)
    {
        const string Boundary = "3F1C2A0B1C.1773136801/mail.y.example";
        var groups = string.Join("\n", recipients.Select(r => $"""
            Final-Recipient: rfc822; {r.Address}
            Original-Recipient: rfc822;{r.Address}
            Action: {r.Action}
            Status: {r.Status}
            Remote-MTA: dns; mx.y.example
            Diagnostic-Code: {Fold(r.Diagnostic)}

            """));
        var people = string.Join("\n", recipients.Select(r => $"<{r.Address}>: host mx.y.example[192.0.2.25] said: {r.Diagnostic[(r.Diagnostic.IndexOf(';', StringComparison.Ordinal) + 1)..].Trim()} (in reply to RCPT TO command)"));
        return $"""
            Return-Path: <>
            Received: by mail.y.example (Postfix)
            	id 3F1C2A0B1C; Tue, 10 Mar 2026 10:00:01 +0000 (UTC)
            Date: Tue, 10 Mar 2026 10:00:01 +0000 (UTC)
            From: MAILER-DAEMON@mail.y.example (Mail Delivery System)
            Subject: Undelivered Mail Returned to Sender
            To: ion@test.example
            Auto-Submitted: auto-replied
            MIME-Version: 1.0
            Content-Type: multipart/report; report-type=delivery-status;
            	boundary="{Boundary}"
            Content-Transfer-Encoding: 8bit
            Message-Id: <20260310100001.4A2B3C0D1E@mail.y.example>

            This is a MIME-encapsulated message.

            --{Boundary}
            Content-Description: Notification
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: 8bit

            This is the mail system at host mail.y.example.

            I'm sorry to have to inform you that your message could not
            be delivered to one or more recipients. It's attached below.

            For further assistance, please send mail to postmaster.

                               The mail system

            {people}

            --{Boundary}
            Content-Description: Delivery report
            Content-Type: message/delivery-status

            Reporting-MTA: dns; mail.y.example
            X-Postfix-Queue-ID: 3F1C2A0B1C
            X-Postfix-Sender: rfc822; ion@test.example
            Arrival-Date: Tue, 10 Mar 2026 09:59:58 +0000 (UTC)

            {groups}
            --{Boundary}
            Content-Description: Undelivered Message Headers
            Content-Type: text/rfc822-headers
            Content-Transfer-Encoding: 8bit

            {originalHeaders.ReplaceLineEndings("\n").TrimEnd('\n')}

            --{Boundary}--

            """;
    }

    /// <summary>Headers of an email as ion sends it, with the given Message-ID.</summary>
    public static string OriginalHeaders(string messageId, string to) => $"""
        Return-Path: <ion@test.example>
        Received: from ion (localhost [127.0.0.1])
        	by mail.y.example (Postfix) with ESMTP id 3F1C2A0B1C
        	for <{to}>; Tue, 10 Mar 2026 09:59:58 +0000 (UTC)
        From: ion@test.example
        Date: Tue, 10 Mar 2026 09:59:58 +0000
        Subject: Hello
        Message-Id: <{messageId}>
        To: {to}
        MIME-Version: 1.0
        Content-Type: text/plain; charset=utf-8
        """;

    // Postfix folds a long Diagnostic-Code at 80 columns.
    private static string Fold(string diagnostic)
    {
        var at = diagnostic.Length <= 60 ? -1 : diagnostic.LastIndexOf(' ', 60);
        return at <= 0 ? diagnostic : diagnostic[..at] + "\n   " + diagnostic[at..];
    }

    public static JsonElement Parse(string json) => JsonDocument.Parse(json).RootElement.Clone();
}
