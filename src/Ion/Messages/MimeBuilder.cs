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
    // Every address goes in canonical form (the parser's addresses already are; the configured default
    // sender may not be). MimeKit keeps a domain decoded, but writes it as the A-label unless the email is
    // written internationally, i.e. sent with SMTPUTF8.
    public static MimeMessage Build(EmailMessage email, string messageId, MessageRules rules, DateTimeOffset? date = null)
    {
        ArgumentNullException.ThrowIfNull(email);
        ArgumentNullException.ThrowIfNull(rules);

        var sender = Canonical(email.From ?? rules.DefaultSender);
        var message = new MimeMessage();
        message.From.Add(Mailbox(sender));
        message.To.AddRange(email.To.Select(Mailbox));
        message.Cc.AddRange(email.Cc.Select(Mailbox));
        // Written into the MIME text like any header; MailKit leaves it out when it sends.
        message.Bcc.AddRange(email.Bcc.Select(Mailbox));
        if (email.ReplyTo is { } replyTo)
            message.ReplyTo.Add(Mailbox(replyTo));
        message.Subject = email.Subject;
        message.MessageId = MessageIds.MessageIdHeader(messageId, sender[(sender.LastIndexOf('@') + 1)..]);
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

    static MailboxAddress Mailbox(string address) => MailboxAddress.Parse(Canonical(address));

    static string Canonical(string address) =>
        Addresses.TryCanonicalize(address, out var canonical, out var problem)
            ? canonical
            : throw new ArgumentException($"'{address}' is not an email address: {problem}", nameof(address));

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
