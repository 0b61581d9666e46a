using System.Net.Sockets;
using Ion.Delivery;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;

namespace Ion.Tests.Delivery;

public class SmtpOutcomesTests
{
    public static TheoryData<int, string, SmtpStage, OutcomeKind, string?> Replies => new()
    {
        { 250, "2.0.0 Ok: queued as 4F1", SmtpStage.Data, OutcomeKind.Accepted, "2.0.0" },
        // Permanent: 5xx about a recipient or the message.
        { 550, "5.1.1 No such user", SmtpStage.RcptTo, OutcomeKind.Permanent, "5.1.1" },
        { 500, "5.3.0 Error: command failed", SmtpStage.RcptTo, OutcomeKind.Permanent, "5.3.0" },
        { 554, "5.7.1 Message rejected as spam", SmtpStage.Data, OutcomeKind.Permanent, "5.7.1" },
        { 552, "Message size exceeds fixed limit", SmtpStage.Data, OutcomeKind.Permanent, null },
        // Transient: 4xx.
        { 451, "4.7.1 Greylisted, try later", SmtpStage.RcptTo, OutcomeKind.Transient, "4.7.1" },
        { 450, "4.3.0 Error: command failed", SmtpStage.RcptTo, OutcomeKind.Transient, "4.3.0" },
        { 452, "4.2.2 Mailbox full", SmtpStage.RcptTo, OutcomeKind.Transient, "4.2.2" },
        { 452, "4.5.3 Too many recipients", SmtpStage.RcptTo, OutcomeKind.Transient, "4.5.3" },
        // A 421 that is not about rate ends the connection; for the message it is one more try, not a pause that a
        // connect probe would end at once.
        { 421, "4.3.2 Service shutting down", SmtpStage.Data, OutcomeKind.Transient, "4.3.2" },
        // The basic code wins when the enhanced code disagrees (RFC 3463 section 2).
        { 450, "5.2.1 Mailbox disabled", SmtpStage.RcptTo, OutcomeKind.Transient, "5.2.1" },
        { 550, "4.2.1 Try again", SmtpStage.RcptTo, OutcomeKind.Permanent, "4.2.1" },
        // X.2.2 is mailbox full: persistent transient, whatever the basic code (RFC 3463).
        { 552, "5.2.2 Mailbox full", SmtpStage.RcptTo, OutcomeKind.Transient, "5.2.2" },
        // Throttling: slow down, no attempt.
        { 454, "4.7.0 Throttling failure: Maximum sending rate exceeded.", SmtpStage.MailFrom, OutcomeKind.Throttled, "4.7.0" },
        { 454, "Throttling failure: Daily message quota exceeded.", SmtpStage.Data, OutcomeKind.Throttled, null },
        { 421, "4.7.0 Try again later, closing connection.", SmtpStage.MailFrom, OutcomeKind.Throttled, "4.7.0" },
        { 451, "4.7.650 The mail server has been temporarily rate limited due to IP reputation.", SmtpStage.RcptTo, OutcomeKind.Throttled, "4.7.650" },
        { 450, "4.7.1 Too many messages, slow down", SmtpStage.MailFrom, OutcomeKind.Throttled, "4.7.1" },
        // The relay refuses ion itself: pause, no attempt.
        { 530, "5.7.0 Must issue a STARTTLS command first", SmtpStage.MailFrom, OutcomeKind.RelayRefusesIon, "5.7.0" },
        { 530, "5.7.0 Authentication required", SmtpStage.RcptTo, OutcomeKind.RelayRefusesIon, "5.7.0" },
        { 535, "5.7.8 Authentication credentials invalid", SmtpStage.MailFrom, OutcomeKind.RelayRefusesIon, "5.7.8" },
        { 550, "5.7.1 Relaying denied", SmtpStage.RcptTo, OutcomeKind.RelayRefusesIon, "5.7.1" },
        { 554, "5.7.1 <bob@example.com>: Relay access denied", SmtpStage.RcptTo, OutcomeKind.RelayRefusesIon, "5.7.1" },
        { 553, "5.7.1 Sender address rejected: not owned by user", SmtpStage.MailFrom, OutcomeKind.RelayRefusesIon, "5.7.1" },
        { 554, "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", SmtpStage.RcptTo, OutcomeKind.RelayRefusesIon, "5.7.1" },
        { 550, "5.1.0 Sender rejected", SmtpStage.MailFrom, OutcomeKind.RelayRefusesIon, "5.1.0" },
    };

    [Theory]
    [MemberData(nameof(Replies))]
    public void Reply_IsClassifiedByStageCodeAndEnhancedCode(int code, string text, SmtpStage stage, OutcomeKind expected, string? enhanced)
    {
        var answer = SmtpOutcomes.Classify(code, text, stage);

        Assert.Equal(expected, answer.Kind);
        Assert.Equal(code, answer.Code);
        Assert.Equal(enhanced, answer.EnhancedCode);
        Assert.StartsWith(code.ToString(System.Globalization.CultureInfo.InvariantCulture), answer.Reply, StringComparison.Ordinal);
        Assert.Contains(text.TrimEnd('.'), answer.Reply, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(SmtpErrorCode.SenderNotAccepted, SmtpStatusCode.MailboxUnavailable, OutcomeKind.RelayRefusesIon)]
    [InlineData(SmtpErrorCode.RecipientNotAccepted, SmtpStatusCode.MailboxUnavailable, OutcomeKind.Permanent)]
    [InlineData(SmtpErrorCode.MessageNotAccepted, SmtpStatusCode.MailboxUnavailable, OutcomeKind.Permanent)]
    [InlineData(SmtpErrorCode.MessageNotAccepted, SmtpStatusCode.ServiceNotAvailable, OutcomeKind.Transient)]
    public void CommandException_IsClassifiedAtTheStageMailKitNames(SmtpErrorCode error, SmtpStatusCode status, OutcomeKind expected)
    {
        var answer = SmtpOutcomes.Classify(new SmtpCommandException(error, status, "refused"), SmtpStage.Data);

        Assert.Equal(expected, answer.Kind);
        Assert.Equal((int)status, answer.Code);
    }

    public static TheoryData<Exception, OutcomeKind> Failures => new()
    {
        { new SmtpProtocolException("The SMTP server has unexpectedly disconnected."), OutcomeKind.Transient },
        { new IOException("Connection reset by peer"), OutcomeKind.Transient },
        { new TimeoutException("Operation timed out after 1000 milliseconds"), OutcomeKind.Transient },
        { new SocketException((int)SocketError.ConnectionReset), OutcomeKind.Transient },
        { new FormatException("something unexpected"), OutcomeKind.Transient },
        { new AuthenticationException("535: Invalid username or password"), OutcomeKind.RelayUnavailable },
        // MailKit's own exception for a 530 to MAIL, RCPT or DATA.
        { new ServiceNotAuthenticatedException("5.7.0 Must issue a STARTTLS command first"), OutcomeKind.RelayRefusesIon },
        { new ServiceNotConnectedException("The SmtpClient is not connected."), OutcomeKind.RelayUnavailable },
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public void OtherFailure_WhileSending_IsClassifiedByType(Exception error, OutcomeKind expected)
    {
        Assert.Equal(expected, SmtpOutcomes.Classify(error, SmtpStage.Data).Kind);
    }

    public static TheoryData<Exception> ConnectFailures => new()
    {
        new SocketException((int)SocketError.ConnectionRefused),
        new SslHandshakeException("certificate not trusted"),
        new AuthenticationException("535: Invalid username or password"),
        new SmtpCommandException(SmtpErrorCode.UnexpectedStatusCode, SmtpStatusCode.ServiceNotAvailable, "4.3.2 Service not available"),
        // Even a 5xx greeting is the relay's problem, not the message's.
        new SmtpCommandException(SmtpErrorCode.UnexpectedStatusCode, SmtpStatusCode.TransactionFailed, "5.3.2 No service"),
        new TimeoutException("no connection within 00:00:30"),
    };

    [Theory]
    [MemberData(nameof(ConnectFailures))]
    public void AnyFailure_WhileConnecting_MeansRelayUnavailable(Exception error)
    {
        var answer = SmtpOutcomes.Classify(error, SmtpStage.Connect);

        Assert.Equal(OutcomeKind.RelayUnavailable, answer.Kind);
        Assert.True(answer.IsAboutTheRelay);
        Assert.False(string.IsNullOrWhiteSpace(answer.Reply));
    }

    [Theory]
    [InlineData("2.0.0 Ok: queued as 4F1", "2.0.0")]
    [InlineData("5.1.1 <bob@example.com>: Recipient address rejected", "5.1.1")]
    [InlineData("4.7.0 Try again later", "4.7.0")]
    [InlineData("Ok", null)]
    [InlineData("6.1.1 not a class", null)]
    [InlineData("5.1.1", "5.1.1")]
    [InlineData("", null)]
    public void EnhancedCode_IsReadFromTheStartOfTheReply(string text, string? expected)
    {
        Assert.Equal(expected, SmtpReply.ParseEnhancedCode(text));
    }
}
