using Ion.Suppression;
using static Ion.Tests.Suppression.FeedbackSamples;

namespace Ion.Tests.Suppression;

/// <summary>SES's notifications, raw and in SNS's envelope: which recipients go on the list, as what, and what is
/// refused. Pure: no I/O.</summary>
public class SesNotificationsTests
{
    private const string IonMessageId = "ion.0123456789abcdef0123456789abcdef@test.example";

    public static TheoryData<string, string, string?, string?, bool> Bounces => new()
    {
        // bounceType, bounceSubType, status, diagnosticCode, suppressed
        { "Permanent", "General", "5.1.1", "smtp; 550 5.1.1 <bob@y.example>... User unknown", true },
        { "Permanent", "General", "5.0.0", "smtp; 550 5.1.1 The email account that you tried to reach does not exist", true },
        { "Permanent", "General", "5.0.0", "smtp; 550 No such user here", true },
        { "Permanent", "NoEmail", "5.0.0", "smtp; 550 5.0.0 Requested action not taken: mailbox unavailable", true },
        { "Permanent", "Suppressed", "5.1.1", "Amazon SES has suppressed sending to this address because it has a recent history of bouncing as an invalid address.", true },
        { "Permanent", "OnAccountSuppressionList", null, "Amazon SES did not send the message to this address because it is on the suppression list for your account.", true },
        // Permanent, but the code says policy or content: the address is fine.
        { "Permanent", "General", "5.7.1", "smtp; 554 5.7.1 Message rejected as spam", false },
        { "Permanent", "General", "5.0.0", "smtp; 550 5.7.26 Unauthenticated email is not accepted due to domain's DMARC policy", false },
        // Permanent without any code: SES's word.
        { "Permanent", "General", null, null, true },
        { "Transient", "General", "4.4.7", "smtp; 421 4.4.7 Message expired", false },
        { "Transient", "MailboxFull", "5.2.2", "smtp; 552 5.2.2 The email account that you tried to reach is over quota", false },
        { "Transient", "ContentRejected", "5.6.1", "smtp; 554 5.6.1 Content rejected", false },
        { "Undetermined", "Undetermined", "5.1.1", "smtp; 550 5.1.1 User unknown", false },
    };

    [Theory]
    [MemberData(nameof(Bounces))]
    public void ABounce_SuppressesOnlyPermanentOnesAboutTheAddress(string bounceType, string subType, string? status, string? diagnostic, bool suppressed)
    {
        var report = Report(SesBounce(bounceType, subType, IonMessageId, ("bob@y.example", status, diagnostic)));
        if (suppressed)
        {
            var item = Assert.Single(report.Suppress);
            Assert.Equal(new FeedbackItem("bob@y.example", SuppressionReason.Bounce, item.Detail, IonMessageId), item);
            Assert.StartsWith($"SES bounce {bounceType}/{subType}", item.Detail, StringComparison.Ordinal);
            Assert.Equal(0, report.Ignored);
        }
        else
        {
            Assert.Empty(report.Suppress);
            Assert.Equal(1, report.Ignored);
        }
        Assert.Equal("ses", report.Source);
    }

    [Fact]
    public void TheSameNotification_InSnsEnvelope_ReadsTheSame()
    {
        var raw = SesBounce("Permanent", "General", IonMessageId, ("bob@y.example", "5.1.1", "smtp; 550 5.1.1 user unknown"));
        var wrapped = Report(SnsEnvelope(raw));
        Assert.Equal(Report(raw).Suppress, wrapped.Suppress);
        Assert.Equal("bob@y.example", Assert.Single(wrapped.Suppress).Address);
    }

    [Fact]
    public void AConfigurationSetEvent_eventType_ReadsTheSame()
    {
        var json = SesBounce("Permanent", "General", null, ("bob@y.example", "5.1.1", null)).Replace("\"notificationType\"", "\"eventType\"", StringComparison.Ordinal);
        Assert.Equal("bob@y.example", Assert.Single(Report(json).Suppress).Address);
    }

    [Fact]
    public void AComplaint_SuppressesEachRecipientAsComplaint_ButNotSpamDoesNot()
    {
        var report = Report(SnsEnvelope(SesComplaint("abuse", IonMessageId, "carol@y.example", "Dan@Bücher.example")));
        Assert.Equal(["carol@y.example", "Dan@xn--bcher-kva.example"], report.Suppress.Select(i => i.Address));
        Assert.All(report.Suppress, i => Assert.Equal(SuppressionReason.Complaint, i.Reason));
        Assert.Equal("SES complaint (abuse)", report.Suppress[0].Detail);
        // Some providers send no feedback type at all: still a complaint.
        Assert.Single(Report(SesComplaint(null, null, "carol@y.example")).Suppress);
        var notSpam = Report(SesComplaint("not-spam", null, "carol@y.example"));
        Assert.Empty(notSpam.Suppress);
        Assert.Equal(1, notSpam.Ignored);
    }

    [Fact]
    public void ADelivery_IgnoresItsRecipients()
    {
        var report = Report(SnsEnvelope(SesDelivery("alice@x.example", "bob@y.example")));
        Assert.Empty(report.Suppress);
        Assert.Equal(2, report.Ignored);
    }

    [Fact]
    public void AMessageIdNotIons_IsNotKept_AndAngleBracketsAreNot()
    {
        var foreign = Report(SesBounce("Permanent", "General", "custom-message-ID", ("bob@y.example", "5.1.1", null)));
        Assert.Null(Assert.Single(foreign.Suppress).MessageId);
        var none = Report(SesBounce("Permanent", "General", null, ("bob@y.example", "5.1.1", null)));
        Assert.Null(Assert.Single(none.Suppress).MessageId);
    }

    [Fact]
    public void AnAddressThatDoesNotCanonicalise_IsSkippedAndCounted_TheOthersStillCount()
    {
        var report = Report(SesBounce("Permanent", "General", null,
            ("not an address", "5.1.1", null), ("bob@y.example", "5.1.1", null), ("x@-bad-.example", "5.1.1", null)));
        Assert.Equal(["bob@y.example"], report.Suppress.Select(i => i.Address));
        Assert.Equal(2, report.Rejected);
        var missing = Report("""{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":[{"status":"5.1.1"}]}}""");
        Assert.Equal(1, missing.Rejected);
    }

    [Fact]
    public void ASubscriptionConfirmation_IsNotFeedback_AndCarriesTheUrl()
    {
        var confirmation = Assert.IsType<SesMessage.Subscription>(SesNotifications.Read(SnsSubscriptionConfirmation()));
        Assert.Equal("SubscriptionConfirmation", confirmation.Type);
        Assert.StartsWith("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription", confirmation.SubscribeUrl, StringComparison.Ordinal);
        Assert.Equal("arn:aws:sns:us-east-1:123456789012:ses-feedback", confirmation.TopicArn);
    }

    [Theory]
    [InlineData("", "not JSON")]
    [InlineData("{\"notificationType\":\"Bounce\",", "not JSON")]
    [InlineData("[1,2]", "not a JSON object")]
    [InlineData("\"Bounce\"", "not a JSON object")]
    [InlineData("{}", "neither notificationType nor eventType")]
    [InlineData("{\"action\":\"send\",\"recipient\":\"a@example.com\"}", "neither notificationType nor eventType")]
    [InlineData("{\"notificationType\":\"Bounce\"}", "without bounce.bouncedRecipients")]
    [InlineData("{\"notificationType\":\"Bounce\",\"bounce\":{\"bouncedRecipients\":\"bob@y.example\"}}", "without bounce.bouncedRecipients")]
    [InlineData("{\"notificationType\":\"Complaint\",\"complaint\":{}}", "without complaint.complainedRecipients")]
    [InlineData("{\"Type\":\"Notification\"}", "without a Message string")]
    [InlineData("{\"Type\":\"Notification\",\"Message\":\"not json\"}", "not JSON")]
    [InlineData("{\"Type\":\"Notification\",\"Message\":\"[]\"}", "Message is not a JSON object")]
    [InlineData("{\"Type\":\"<script>\"}", "unknown Type (not a plain name)")]
    public void HostileInput_IsUnreadable_WithAReason(string body, string reason)
    {
        var unreadable = Assert.IsType<SesMessage.Unreadable>(SesNotifications.Read(body));
        Assert.Contains(reason, unreadable.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void DeeplyNestedJson_IsUnreadable_NotAStackOverflow()
    {
        var deep = "{\"notificationType\":\"Bounce\",\"x\":" + new string('[', 10_000) + new string(']', 10_000) + "}";
        Assert.IsType<SesMessage.Unreadable>(SesNotifications.Read(deep));
    }

    private static FeedbackReport Report(string json) =>
        Assert.IsType<SesMessage.Notification>(SesNotifications.Read(json)).Report;
}
