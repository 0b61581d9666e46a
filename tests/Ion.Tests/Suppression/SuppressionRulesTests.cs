using Ion.Delivery;
using Ion.Suppression;

namespace Ion.Tests.Suppression;

/// <summary>Only an address that cannot take mail goes on the list: real refusals, as relays word them.</summary>
public class SuppressionRulesTests
{
    [Theory]
    // Gmail, Outlook, SES, Postfix: the mailbox does not exist or is disabled.
    [InlineData(550, "5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos", true)]
    [InlineData(550, "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", true)]
    [InlineData(550, "5.1.1 <bob@y.example>: Recipient address rejected: User unknown in virtual mailbox table", true)]
    [InlineData(550, "5.2.1 The email account that you tried to reach is disabled.", true)]
    [InlineData(556, "5.1.10 Recipient address has null MX", true)]
    [InlineData(553, "5.1.3 The recipient address <bob@> is not a valid RFC-5321 address.", true)]
    [InlineData(550, "No such user here", true)]
    [InlineData(550, "Requested action not taken: mailbox unavailable (user unknown)", true)]
    // Policy, reputation, content, size, relaying, a full mailbox: the address is fine.
    [InlineData(550, "5.7.1 Our system has detected that this message is likely unsolicited mail.", false)]
    [InlineData(554, "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", false)]
    [InlineData(552, "5.3.4 Message size exceeds fixed maximum message size", false)]
    [InlineData(550, "5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC policy", false)]
    [InlineData(554, "5.6.0 Message rejected: content", false)]
    [InlineData(550, "Mailbox unavailable", false)]
    public void APermanentRefusal_SuppressesOnlyWhenItSaysTheAddressCannotTakeMail(int code, string text, bool suppresses) =>
        Assert.Equal(suppresses, SuppressionRules.Suppresses(SmtpOutcomes.Classify(code, text, SmtpStage.RcptTo)));

    [Theory]
    [InlineData(450, "4.1.1 Recipient address rejected: unverified address: temporary failure")]
    [InlineData(452, "4.2.2 The email account that you tried to reach is over quota")]
    [InlineData(552, "5.2.2 The email account that you tried to reach is over quota")]
    public void ATransientRefusal_NeverSuppresses(int code, string text) =>
        Assert.False(SuppressionRules.Suppresses(SmtpOutcomes.Classify(code, text, SmtpStage.RcptTo)));

    [Theory]
    // A report's Status and Diagnostic-Code (RFC 3464), as a DSN or an SES bounce gives them.
    [InlineData("5.1.1", null, true)]
    [InlineData("5.1.1", "smtp; 550 5.1.1 User unknown", true)]
    [InlineData("5.0.0", "smtp; 550 5.1.1 User unknown", true)]
    [InlineData("5.0.0", "smtp; 550-5.1.1 The email account that you tried to reach does not exist", true)]
    [InlineData(null, "smtp; 550 No such user here", true)]
    [InlineData("5.0.0", "X-Postfix; unknown user: \"bob\"", true)]
    [InlineData("5.7.1", "smtp; 550 5.1.1 User unknown", false)]
    [InlineData("5.7.1", null, false)]
    [InlineData("5.0.0", "smtp; 554 5.7.1 Message rejected as spam", false)]
    [InlineData("5.0.0", "smtp; 552 5.2.2 Mailbox full", false)]
    [InlineData("5.0.0", null, false)]
    [InlineData("4.1.1", "smtp; 450 4.1.1 User unknown (try later)", false)]
    [InlineData("2.0.0", "smtp; 250 OK", false)]
    [InlineData("not a status", "smtp; 550 5.1.1 User unknown", true)]
    public void AReportedFailure_IsJudgedByTheSameCodes(string? status, string? diagnostic, bool suppresses) =>
        Assert.Equal(suppresses, SuppressionRules.Suppresses(status, diagnostic));

    [Fact]
    public void AReportWithoutAnyCode_LeavesItToTheCaller() =>
        Assert.Null(SuppressionRules.Suppresses(null, null));
}
