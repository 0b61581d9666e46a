using System.Text;
using Ion.Messages;
using MimeKit;

namespace Ion.Tests.Messages;

public class MimeBuilderTests
{
    static readonly MessageRules Rules = new("noreply@example.com", ["news@example.com", "@mail.example.org"]);

    static readonly EmailMessage Minimal = new()
    {
        To = ["a@example.com"],
        Subject = "Hi",
        BodyText = "plain",
    };

    // Writes the email out and reads it back, as the relay and the recipient will.
    static MimeMessage RoundTrip(MimeMessage message)
    {
        using var stream = new MemoryStream();
        message.WriteTo(stream, TestContext.Current.CancellationToken);
        stream.Position = 0;
        return MimeMessage.Load(stream, TestContext.Current.CancellationToken);
    }

    static MimeMessage BuildAndRead(EmailMessage email, string messageId = "m-1", DateTimeOffset? date = null)
    {
        using var built = MimeBuilder.Build(email, messageId, Rules, date);
        return RoundTrip(built);
    }

    // A written message ends with a line break, which a single-part body reads back as its own.
    static string Text(MimeEntity? entity) => Assert.IsType<TextPart>(entity).Text.TrimEnd('\r', '\n');

    [Fact]
    public void OriginalMessage_BecomesMultipartAlternativeWithTextFirst()
    {
        var parsed = MessageParser.Parse(
            """{"action":"send","recipient":"a@example.com","subject":"Hi","body_text":"plain","body_html":"<p>html</p>"}""", Rules);
        var email = Assert.IsType<SendRequest>(parsed).Email;

        using var message = BuildAndRead(email);

        var alternative = Assert.IsType<MultipartAlternative>(message.Body);
        Assert.Equal(2, alternative.Count);
        Assert.True(alternative[0].ContentType.IsMimeType("text", "plain"));
        Assert.True(alternative[1].ContentType.IsMimeType("text", "html"));
        Assert.Equal("plain", Text(alternative[0]));
        Assert.Equal("<p>html</p>", Text(alternative[1]));
        Assert.Equal("Hi", message.Subject);
        Assert.Equal(["a@example.com"], message.To.Mailboxes.Select(m => m.Address));
    }

    [Fact]
    public void TextOnly_IsOneTextPlainPart()
    {
        using var message = BuildAndRead(Minimal);

        var part = Assert.IsType<TextPart>(message.Body);
        Assert.True(part.ContentType.IsMimeType("text", "plain"));
        Assert.Equal("plain", Text(part));
    }

    [Fact]
    public void HtmlOnly_IsOneTextHtmlPart()
    {
        using var message = BuildAndRead(Minimal with { BodyText = null, BodyHtml = "<p>only</p>" });

        var part = Assert.IsType<TextPart>(message.Body);
        Assert.True(part.ContentType.IsMimeType("text", "html"));
        Assert.Equal("<p>only</p>", Text(part));
    }

    [Fact]
    public void UnicodeSubjectAndBody_SurviveTheRoundTrip()
    {
        using var built = MimeBuilder.Build(Minimal with { Subject = "Grüße ✓", BodyText = "Schöne Grüße ✓" }, "m-1", Rules);
        using var message = RoundTrip(built);

        Assert.Equal("Grüße ✓", message.Subject);
        Assert.Equal("Schöne Grüße ✓", Text(message.Body));
        // On the wire the header itself is ASCII: RFC 2047 encoded words.
        var subjectLine = Written(built).Split('\n').Single(line => line.StartsWith("Subject:", StringComparison.Ordinal));
        Assert.True(Ascii.IsValid(subjectLine), subjectLine);
    }

    static string Written(MimeMessage message) => Written(message, FormatOptions.Default);

    static string[] Lines(string written) => [.. written.Split('\n').Select(line => line.TrimEnd('\r'))];

    static string Written(MimeMessage message, FormatOptions options)
    {
        using var stream = new MemoryStream();
        message.WriteTo(options, stream, TestContext.Current.CancellationToken);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    [Fact]
    public void MessageId_IsStableForTheSameId()
    {
        using var first = BuildAndRead(Minimal, "order-42");
        using var second = BuildAndRead(Minimal with { Subject = "Other" }, "order-42");

        Assert.Equal(MessageIds.MessageIdHeader("order-42", "example.com"), first.MessageId);
        Assert.Equal(first.MessageId, second.MessageId);
    }

    [Fact]
    public void MessageId_DiffersForADifferentId()
    {
        using var first = BuildAndRead(Minimal, "order-42");
        using var second = BuildAndRead(Minimal, "order-43");

        Assert.NotEqual(first.MessageId, second.MessageId);
    }

    [Fact]
    public void MessageId_UsesTheDomainOfTheFromAddress()
    {
        using var message = BuildAndRead(Minimal with { From = "team@mail.example.org" }, "order-42");

        Assert.EndsWith("@mail.example.org", message.MessageId, StringComparison.Ordinal);
    }

    [Fact]
    public void NoFrom_SendsFromTheDefaultSender()
    {
        using var message = BuildAndRead(Minimal);

        var from = Assert.Single(message.From.Mailboxes);
        Assert.Equal("noreply@example.com", from.Address);
        Assert.Equal("", from.Name);
    }

    [Fact]
    public void AllowedFrom_SendsFromIt()
    {
        using var message = BuildAndRead(Minimal with { From = "news@example.com" });

        Assert.Equal(["news@example.com"], message.From.Mailboxes.Select(m => m.Address));
    }

    [Fact]
    public void Recipients_AndReplyTo_AreAllThere()
    {
        var email = Minimal with
        {
            To = ["a@example.com", "b@example.com"],
            Cc = ["c@example.com"],
            Bcc = ["d@example.com", "e@example.com"],
            ReplyTo = "support@example.com",
        };

        using var message = BuildAndRead(email);

        Assert.Equal(["a@example.com", "b@example.com"], message.To.Mailboxes.Select(m => m.Address));
        Assert.Equal(["c@example.com"], message.Cc.Mailboxes.Select(m => m.Address));
        Assert.Equal(["d@example.com", "e@example.com"], message.Bcc.Mailboxes.Select(m => m.Address));
        Assert.Equal(["support@example.com"], message.ReplyTo.Mailboxes.Select(m => m.Address));
    }

    [Fact]
    public void NoReplyTo_LeavesTheHeaderOut()
    {
        using var message = BuildAndRead(Minimal);

        Assert.Empty(message.ReplyTo);
        Assert.Empty(message.Cc);
        Assert.Empty(message.Bcc);
    }

    [Fact]
    public void CustomHeaders_AreAddedInOrder()
    {
        var email = Minimal with { Headers = [new("X-Campaign", "spring"), new("X-Note", "Grüße ✓"), new("X-Empty", "")] };

        using var message = BuildAndRead(email);

        Assert.Equal("spring", message.Headers["X-Campaign"]);
        Assert.Equal("Grüße ✓", message.Headers["X-Note"]);
        Assert.Equal("", message.Headers["X-Empty"]);
        var custom = message.Headers.Where(h => h.Field.StartsWith("X-", StringComparison.Ordinal)).Select(h => h.Field);
        Assert.Equal(["X-Campaign", "X-Note", "X-Empty"], custom);
    }

    [Fact]
    public void Attachments_AreBase64PartsAfterTheBody()
    {
        byte[] pdf = [0x25, 0x50, 0x44, 0x46, 0x00, 0xFF, 0x0D, 0x0A];
        var email = Minimal with
        {
            BodyHtml = "<p>html</p>",
            Attachments =
            [
                new Attachment("report.pdf", "application/pdf", pdf),
                new Attachment("Bericht für März.txt", "text/plain; charset=utf-8", "Grüße\r\n"u8.ToArray()),
            ],
        };

        using var message = BuildAndRead(email);

        var mixed = Assert.IsType<Multipart>(message.Body);
        Assert.True(mixed.ContentType.IsMimeType("multipart", "mixed"));
        Assert.Equal(3, mixed.Count);
        Assert.IsType<MultipartAlternative>(mixed[0]);
        var attachments = message.Attachments.Cast<MimePart>().ToList();
        Assert.Equal(["report.pdf", "Bericht für März.txt"], attachments.Select(a => a.FileName));
        Assert.Equal(["application/pdf", "text/plain"], attachments.Select(a => a.ContentType.MimeType));
        Assert.All(attachments, a => Assert.Equal(ContentEncoding.Base64, a.ContentTransferEncoding));
        Assert.All(attachments, a => Assert.True(a.IsAttachment));
        Assert.Equal(pdf, Decoded(attachments[0]));
        Assert.Equal("Grüße\r\n"u8.ToArray(), Decoded(attachments[1]));
    }

    [Fact]
    public void TextWithOneAttachment_IsMixedTextThenAttachment()
    {
        using var message = BuildAndRead(Minimal with { Attachments = [new Attachment("a.bin", "application/octet-stream", [1, 2, 3])] });

        var mixed = Assert.IsType<Multipart>(message.Body);
        Assert.Equal(2, mixed.Count);
        Assert.Equal("plain", Text(mixed[0]));
        Assert.Equal([1, 2, 3], Decoded(Assert.IsType<MimePart>(mixed[1])));
    }

    static byte[] Decoded(MimePart part)
    {
        Assert.NotNull(part.Content);
        using var stream = new MemoryStream();
        part.Content.DecodeTo(stream, TestContext.Current.CancellationToken);
        return stream.ToArray();
    }

    [Fact]
    public void InternationalisedDomains_AreWrittenAsALabels_WhenNotWrittenInternationally()
    {
        var rules = Rules with { DefaultSender = "noreply@BÜCHER.DE" };
        var email = Minimal with { To = ["bob@xn--bcher-kva.de"], Cc = ["carol@faß.de"], ReplyTo = "help@ｂücher.de" };

        using var built = MimeBuilder.Build(email, "m-1", rules);
        var written = Written(built, FormatOptions.Default);

        Assert.Contains("From: noreply@xn--bcher-kva.de", Lines(written));
        Assert.Contains("To: bob@xn--bcher-kva.de", Lines(written));
        Assert.Contains("Cc: carol@xn--fa-hia.de", Lines(written));
        Assert.Contains("Reply-To: help@xn--bcher-kva.de", Lines(written));
        Assert.Contains("@xn--bcher-kva.de>", built.Headers[HeaderId.MessageId], StringComparison.Ordinal);
        Assert.True(Ascii.IsValid(written), written);
    }

    [Fact]
    public void AnAddressNotYetCanonical_IsBuiltFromItsCanonicalForm()
    {
        using var built = MimeBuilder.Build(Minimal with { To = ["Bob@BÜCHER.DE"] }, "m-1", Rules);

        var to = Assert.Single(built.To.Mailboxes);
        Assert.Equal("Bob@xn--bcher-kva.de", to.GetAddress(idnEncode: true));
        Assert.Contains("To: Bob@xn--bcher-kva.de", Lines(Written(built, FormatOptions.Default)));
    }

    [Fact]
    public void NonAsciiLocalPart_KeepsItsLocalPart_WithTheDomainAsALabel()
    {
        using var built = MimeBuilder.Build(Minimal with { To = ["jörg@bücher.de"] }, "m-1", Rules);

        var to = Assert.Single(built.To.Mailboxes);
        Assert.Equal("jörg", to.LocalPart);
        Assert.True(Ion.Messages.Addresses.NeedsSmtpUtf8(to.Address));
        // MimeKit writes such a local part raw: that header is only right in an email sent with SMTPUTF8.
        Assert.Contains("To: jörg@xn--bcher-kva.de", Lines(Written(built, FormatOptions.Default)));
    }

    [Fact]
    public void MessageId_UsesTheALabelOfAnInternationalisedSenderDomain()
    {
        using var message = BuildAndRead(Minimal with { From = "team@Bücher.de" }, "order-42");

        Assert.Equal(MessageIds.MessageIdHeader("order-42", "xn--bcher-kva.de"), message.MessageId);
    }

    [Fact]
    public void Date_IsTheOneGiven()
    {
        var date = new DateTimeOffset(2025, 3, 14, 15, 9, 26, TimeSpan.FromHours(1));

        using var message = BuildAndRead(Minimal, date: date);

        Assert.Equal(date, message.Date);
    }
}
