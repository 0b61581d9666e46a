using System.Net.Sockets;
using Ion.Delivery;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;

namespace Ion.Tests.Delivery;

public class SmtpOutcomesTests
{
    public static TheoryData<SmtpErrorCode, SmtpStatusCode, string, OutcomeKind, string?> CommandReplies => new()
    {
        // Permanent: 5xx, whatever the command.
        { SmtpErrorCode.RecipientNotAccepted, SmtpStatusCode.MailboxUnavailable, "5.1.1 No such user", OutcomeKind.Rejected, "5.1.1" },
        { SmtpErrorCode.RecipientNotAccepted, SmtpStatusCode.CommandUnrecognized, "5.3.0 Error: command failed", OutcomeKind.Rejected, "5.3.0" },
        { SmtpErrorCode.MessageNotAccepted, SmtpStatusCode.TransactionFailed, "5.7.1 Message rejected as spam", OutcomeKind.Rejected, "5.7.1" },
        { SmtpErrorCode.SenderNotAccepted, SmtpStatusCode.MailboxUnavailable, "Sender address rejected", OutcomeKind.Rejected, null },
        // Transient: 4xx.
        { SmtpErrorCode.RecipientNotAccepted, SmtpStatusCode.ErrorInProcessing, "4.7.1 Greylisted, try later", OutcomeKind.RetryLater, "4.7.1" },
        { SmtpErrorCode.RecipientNotAccepted, SmtpStatusCode.MailboxBusy, "4.3.0 Error: command failed", OutcomeKind.RetryLater, "4.3.0" },
        { SmtpErrorCode.MessageNotAccepted, SmtpStatusCode.InsufficientStorage, "Mailbox full", OutcomeKind.RetryLater, null },
        // A 4xx reply whose enhanced code says permanent is permanent.
        { SmtpErrorCode.RecipientNotAccepted, SmtpStatusCode.MailboxBusy, "5.2.1 Mailbox disabled", OutcomeKind.Rejected, "5.2.1" },
        // 421: the relay is closing the channel: pause, don't spend the message's attempts.
        { SmtpErrorCode.SenderNotAccepted, SmtpStatusCode.ServiceNotAvailable, "4.0.0 Server closing connection", OutcomeKind.RelayUnavailable, "4.0.0" },
    };

    [Theory]
    [MemberData(nameof(CommandReplies))]
    public void CommandReply_WhileSending_IsClassifiedByCodeAndEnhancedCode(
        SmtpErrorCode error, SmtpStatusCode status, string text, OutcomeKind expected, string? enhanced)
    {
        var outcome = SmtpOutcomes.Classify(new SmtpCommandException(error, status, text), SmtpStage.Send);

        Assert.Equal(expected, outcome.Kind);
        Assert.Equal((int)status, outcome.SmtpCode);
        Assert.Equal(enhanced, outcome.EnhancedCode);
        Assert.StartsWith(((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture), outcome.Reply, StringComparison.Ordinal);
        Assert.Contains(text, outcome.Reply, StringComparison.Ordinal);
    }

    public static TheoryData<Exception, OutcomeKind> Failures => new()
    {
        { new SmtpProtocolException("The SMTP server has unexpectedly disconnected."), OutcomeKind.RetryLater },
        { new IOException("Connection reset by peer"), OutcomeKind.RetryLater },
        { new TimeoutException("Operation timed out after 1000 milliseconds"), OutcomeKind.RetryLater },
        { new SocketException((int)SocketError.ConnectionReset), OutcomeKind.RetryLater },
        { new FormatException("something unexpected"), OutcomeKind.RetryLater },
        { new AuthenticationException("535: Invalid username or password"), OutcomeKind.RelayUnavailable },
        { new ServiceNotAuthenticatedException("Error: authentication Required"), OutcomeKind.RelayUnavailable },
        { new ServiceNotConnectedException("The SmtpClient is not connected."), OutcomeKind.RelayUnavailable },
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public void OtherFailure_WhileSending_IsClassifiedByType(Exception error, OutcomeKind expected)
    {
        Assert.Equal(expected, SmtpOutcomes.Classify(error, SmtpStage.Send).Kind);
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
        var outcome = SmtpOutcomes.Classify(error, SmtpStage.Connect);

        Assert.Equal(OutcomeKind.RelayUnavailable, outcome.Kind);
        Assert.False(string.IsNullOrWhiteSpace(outcome.Reply));
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
