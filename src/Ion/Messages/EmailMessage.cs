namespace Ion.Messages;

/// <summary>A validated <c>send</c> message (contract version 1). Built only by <see cref="MessageParser"/>.</summary>
/// <remarks>Every address (<see cref="To"/>, <see cref="Cc"/>, <see cref="Bcc"/>, <see cref="From"/>, <see cref="ReplyTo"/>)
/// is canonical: the local part NFC-normalised, the domain as its lowercase A-label (<see cref="Addresses.TryCanonicalize"/>).
/// Only a recipient can need SMTPUTF8 (<see cref="Addresses.NeedsSmtpUtf8"/>); From and ReplyTo never do.</remarks>
public sealed record EmailMessage
{
    /// <summary>The client's idempotency key, when it gave one.</summary>
    public string? Id { get; init; }
    public required IReadOnlyList<string> To { get; init; }
    public IReadOnlyList<string> Cc { get; init; } = [];
    public IReadOnlyList<string> Bcc { get; init; } = [];
    /// <summary>The sender the client asked for (already checked against the allowed senders), or null for the default.</summary>
    public string? From { get; init; }
    public string? ReplyTo { get; init; }
    public required string Subject { get; init; }
    public string? BodyText { get; init; }
    public string? BodyHtml { get; init; }
    /// <summary>Custom <c>X-</c> headers, in the order given.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; init; } = [];
    public IReadOnlyList<Attachment> Attachments { get; init; } = [];
    public IReadOnlyList<string> Tags { get; init; } = [];
    /// <summary>Send even to recipients on the suppression list (a password reset the owner asked for), where
    /// <c>Ion:Suppression:AllowIgnore</c> allows it.</summary>
    public bool IgnoreSuppression { get; init; }
    /// <summary>Not to be sent before this time (UTC); null, or a time already past, sends at once.</summary>
    public DateTimeOffset? SendAt { get; init; }
}

public sealed record Attachment(string FileName, string ContentType, byte[] Content);
