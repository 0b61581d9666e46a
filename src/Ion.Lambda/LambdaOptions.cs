namespace Ion.Lambda;

/// <summary>The <c>Ion:Lambda</c> section: what only the Lambda needs.</summary>
public sealed class LambdaOptions
{
    public const string Section = "Ion:Lambda";

    /// <summary>How long a message waits before Lambda hands it back while the relay is down (unreachable, or
    /// refusing ion). Each hand-back is a receive that the redrive policy counts: at 5 minutes an hour's outage costs a
    /// message 12 receives, well under ion's maxReceiveCount of 50, and no attempt.</summary>
    public TimeSpan RelayDownDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>No message is started later than this before the invocation's deadline: what is left goes back at
    /// once, and the SMTP connection is closed, so a timeout never cuts a transaction in half.</summary>
    public TimeSpan DeadlineMargin { get; set; } = TimeSpan.FromSeconds(10);
}
