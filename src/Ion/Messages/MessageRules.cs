namespace Ion.Messages;

/// <summary>The limits a message is validated against, taken from configuration.</summary>
/// <param name="DefaultSender">The From address used when a message names none; always allowed.</param>
/// <param name="AllowedSenders">Addresses (<c>news@example.com</c>) or whole domains (<c>@example.com</c>) a message may name in <c>from</c>.</param>
/// <param name="MaxAttachmentBytes">The decoded size of all attachments of one message together.</param>
public sealed record MessageRules(
    string DefaultSender,
    IReadOnlyList<string> AllowedSenders,
    long MaxAttachmentBytes = MessageRules.DefaultMaxAttachmentBytes)
{
    public const long DefaultMaxAttachmentBytes = 7 * 1024 * 1024;
    public const int MaxRecipients = 50;
    public const int MaxHeaders = 20;
    public const int MaxTags = 10;
    public const int MaxAttachments = 20;
    public const int MaxSubjectLength = 998;
    /// <summary>How far ahead <c>send_at</c> may be when a message is published: a month keeps what waits in the queue
    /// (and in the log, which forgets nothing still waiting) bounded.</summary>
    public static readonly TimeSpan MaxScheduleAhead = TimeSpan.FromDays(30);
}
