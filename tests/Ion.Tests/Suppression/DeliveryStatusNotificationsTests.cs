using System.Text;
using Ion.Suppression;
using static Ion.Tests.Suppression.FeedbackSamples;

namespace Ion.Tests.Suppression;

/// <summary>Bounce mails (RFC 3464) as Postfix writes them, and what is not one. Pure: MimeKit reads them from memory.</summary>
public class DeliveryStatusNotificationsTests
{
    private const string IonMessageId = "ion.0123456789abcdef0123456789abcdef@test.example";

    [Fact]
    public void APostfixBounce_SuppressesTheFailedRecipient_WithTheOriginalMessageId()
    {
        var report = Read(PostfixBounce(OriginalHeaders(IonMessageId, "bob@y.example"),
            ("bob@y.example", "failed", "5.1.1", "smtp; 550 5.1.1 <bob@y.example>: Recipient address rejected: User unknown in virtual mailbox table")));
        var item = Assert.Single(report.Suppress);
        Assert.Equal("bob@y.example", item.Address);
        Assert.Equal(SuppressionReason.Bounce, item.Reason);
        Assert.Equal(IonMessageId, item.MessageId);
        // Unfolded, with where it came from.
        Assert.Equal("DSN from mail.y.example: 5.1.1 smtp; 550 5.1.1 <bob@y.example>: Recipient address rejected: User unknown in virtual mailbox table", item.Detail);
        Assert.Equal(("dsn", 0, 0), (report.Source, report.Ignored, report.Rejected));
    }

    public static TheoryData<string, string, string, bool> Recipients => new()
    {
        // Action, Status, Diagnostic-Code, suppressed
        { "failed", "5.1.1", "smtp; 550 5.1.1 <bob@y.example>: Recipient address rejected: User unknown", true },
        { "failed", "5.1.2", "X-Postfix; Host or domain name not found. Name service error for name=y.example type=AAAA: Host not found", true },
        { "failed", "5.1.10", "smtp; 556 5.1.10 Recipient address has null MX", true },
        { "failed", "5.2.1", "smtp; 550 5.2.1 The email account that you tried to reach is disabled.", true },
        { "failed", "5.0.0", "smtp; 550 Requested action not taken: mailbox unavailable (user unknown)", true },
        { "failed", "5.0.0", "X-Postfix; unknown user: \"bob\"", true },
        { "FAILED", "5.1.1", "smtp; 550 5.1.1 No such user", true },
        { "failed", "5.7.1", "smtp; 554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", false },
        { "failed", "5.3.4", "smtp; 552 5.3.4 Message size exceeds fixed maximum message size", false },
        { "failed", "5.2.2", "smtp; 552 5.2.2 Mailbox full", false },
        { "failed", "5.0.0", "smtp; 550 Mailbox unavailable", false },
        { "failed", "4.4.1", "X-Postfix; connect to mx.y.example[192.0.2.25]:25: Connection timed out", false },
        { "delayed", "4.4.1", "X-Postfix; connect to mx.y.example[192.0.2.25]:25: Connection timed out", false },
        { "delivered", "2.0.0", "smtp; 250 2.0.0 OK", false },
        { "relayed", "2.0.0", "smtp; 250 2.0.0 OK", false },
    };

    [Theory]
    [MemberData(nameof(Recipients))]
    public void ARecipient_IsSuppressedOnlyWhenItFailedForAnAddressReason(string action, string status, string diagnostic, bool suppressed)
    {
        var report = Read(PostfixBounce(OriginalHeaders(IonMessageId, "bob@y.example"), ("bob@y.example", action, status, diagnostic)));
        Assert.Equal(suppressed ? 1 : 0, report.Suppress.Count);
        Assert.Equal(suppressed ? 0 : 1, report.Ignored);
    }

    [Fact]
    public void SeveralRecipients_EachJudgedOnItsOwn_AndABadAddressIsSkipped()
    {
        var report = Read(PostfixBounce(OriginalHeaders("20260310.abc@elsewhere.example", "bob@y.example"),
            ("bob@y.example", "failed", "5.1.1", "smtp; 550 5.1.1 User unknown"),
            ("carol@y.example", "delayed", "4.2.2", "smtp; 452 4.2.2 Mailbox full"),
            ("not-an-address", "failed", "5.1.1", "smtp; 550 5.1.1 User unknown")));
        var item = Assert.Single(report.Suppress);
        Assert.Equal("bob@y.example", item.Address);
        // Not one of ion's emails: no id to link to.
        Assert.Null(item.MessageId);
        Assert.Equal((1, 1), (report.Ignored, report.Rejected));
    }

    [Fact]
    public void AReturnedWholeMessage_message_rfc822_GivesTheMessageIdToo()
    {
        var mail = PostfixBounce(OriginalHeaders(IonMessageId, "bob@y.example") + "\n\nHello\n", ("bob@y.example", "failed", "5.1.1", "smtp; 550 5.1.1 User unknown"))
            .Replace("Content-Type: text/rfc822-headers", "Content-Type: message/rfc822", StringComparison.Ordinal);
        Assert.Equal(IonMessageId, Assert.Single(Read(mail).Suppress).MessageId);
    }

    [Theory]
    [InlineData("", "not a MIME message")]
    [InlineData("just some text, no headers at all\n", "not a MIME message")]
    [InlineData("From: a@x.example\nSubject: hi\n\nplain mail\n", "multipart/report")]
    [InlineData("Content-Type: multipart/report; report-type=disposition-notification; boundary=b\n\n--b\nContent-Type: message/disposition-notification\n\nFinal-Recipient: rfc822; bob@y.example\nDisposition: manual-action/MDN-sent-manually; displayed\n\n--b--\n", "report-type=delivery-status")]
    [InlineData("Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: text/plain\n\nsorry\n--b--\n", "no message/delivery-status part")]
    [InlineData("Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mail.y.example\n\n--b--\n", "names no recipient")]
    public void NotADeliveryReport_IsRefused_WithAReason(string mail, string reason)
    {
        Assert.False(DeliveryStatusNotifications.TryRead(new MemoryStream(Encoding.UTF8.GetBytes(mail)), out _, out var problem));
        Assert.Contains(reason, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void RandomBytes_AreRefused_NotThrown()
    {
        var random = new Random(15);
        for (var i = 0; i < 50; i++)
        {
            var bytes = new byte[random.Next(0, 4096)];
            random.NextBytes(bytes);
            Assert.False(DeliveryStatusNotifications.TryRead(new MemoryStream(bytes), out _, out _));
        }
    }

    private static FeedbackReport Read(string mail)
    {
        Assert.True(DeliveryStatusNotifications.TryRead(new MemoryStream(Encoding.UTF8.GetBytes(mail)), out var report, out var problem), problem);
        return report;
    }
}
