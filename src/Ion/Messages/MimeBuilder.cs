using MimeKit;

namespace Ion.Messages;

/// <summary>Builds the email MailKit sends from a validated <see cref="EmailMessage"/>.</summary>
public static class MimeBuilder
{
    /// <summary>
    /// The email for <paramref name="email"/>; its Message-ID derives from <paramref name="messageId"/>
    /// (<see cref="MessageIds.MessageIdHeader"/>). Without <paramref name="date"/> MimeKit dates it itself.
    /// </summary>
    // Throws only on what the parser already refused or on a DefaultSender that is no address:
    // a bug or bad configuration, not an outcome of the message.
    public static MimeMessage Build(EmailMessage email, string messageId, MessageRules rules, DateTimeOffset? date = null)
    {
        ArgumentNullException.ThrowIfNull(email);
        ArgumentNullException.ThrowIfNull(rules);

        var from = MailboxAddress.Parse(email.From ?? rules.DefaultSender);
        var message = new MimeMessage();
        message.From.Add(from);
        message.To.AddRange(email.To.Select(MailboxAddress.Parse));
        message.Cc.AddRange(email.Cc.Select(MailboxAddress.Parse));
        // Written into the MIME text like any header; MailKit leaves it out when it sends.
        message.Bcc.AddRange(email.Bcc.Select(MailboxAddress.Parse));
        if (email.ReplyTo is { } replyTo)
            message.ReplyTo.Add(MailboxAddress.Parse(replyTo));
        message.Subject = email.Subject;
        message.MessageId = MessageIds.MessageIdHeader(messageId, from.Domain);
        if (date is { } sent)
            message.Date = sent;
        foreach (var (name, value) in email.Headers)
            message.Headers.Add(name, value);

        // BodyBuilder gives the usual shapes: one text part; multipart/alternative with the plain
        // text first, so clients that can show HTML prefer it; multipart/mixed around attachments.
        var body = new BodyBuilder { TextBody = email.BodyText, HtmlBody = email.BodyHtml };
        foreach (var attachment in email.Attachments)
            body.Attachments.Add(ToMimePart(attachment));
        message.Body = body.ToMessageBody();
        return message;
    }

    // Base64 always, even for text: the bytes arrive exactly as the client sent them, whatever
    // line endings or charset they hold.
    static MimePart ToMimePart(Attachment attachment) => new(ContentType.Parse(attachment.ContentType))
    {
        Content = new MimeContent(new MemoryStream(attachment.Content, writable: false)),
        ContentDisposition = new ContentDisposition(ContentDisposition.Attachment),
        ContentTransferEncoding = ContentEncoding.Base64,
        FileName = attachment.FileName,
    };
}
