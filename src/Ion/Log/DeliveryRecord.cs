using System.Text.Json.Serialization;

namespace Ion.Log;

[JsonConverter(typeof(JsonStringEnumConverter<MessageState>))]
public enum MessageState
{
    [JsonStringEnumMemberName("queued")] Queued,
    [JsonStringEnumMemberName("retrying")] Retrying,
    /// <summary>Every recipient accepted it.</summary>
    [JsonStringEnumMemberName("sent")] Sent,
    /// <summary>In the dead letters: at least one recipient failed for good and none is waiting for a retry. The
    /// recipients say who got it anyway.</summary>
    [JsonStringEnumMemberName("dead")] Dead,
    /// <summary>Every recipient is on the suppression list: nothing was sent, and nothing will be (it is finished, as
    /// a sent message is).</summary>
    [JsonStringEnumMemberName("suppressed")] Suppressed,
    /// <summary>Accepted with a <c>send_at</c> still ahead: waiting for that time, and until then cancellable.</summary>
    [JsonStringEnumMemberName("scheduled")] Scheduled,
    /// <summary>Cancelled while scheduled: never sent, and never will be (finished; publishing the id again changes
    /// nothing).</summary>
    [JsonStringEnumMemberName("cancelled")] Cancelled,
}

/// <summary>Why a message is a dead letter, for filtering and redrive.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<FailureClass>))]
public enum FailureClass
{
    /// <summary>The message itself is not valid: it never reached the relay.</summary>
    [JsonStringEnumMemberName("invalid")] Invalid,
    /// <summary>The relay refused it (or a recipient) for good: 5xx.</summary>
    [JsonStringEnumMemberName("permanent")] Permanent,
    /// <summary>Temporary failures (4xx, timeouts) until the attempts ran out.</summary>
    [JsonStringEnumMemberName("transient")] Transient,
    /// <summary>The relay was unavailable or refused ion itself until the message was too old.</summary>
    [JsonStringEnumMemberName("relay")] Relay,
    /// <summary>The relay throttled until the message was too old.</summary>
    [JsonStringEnumMemberName("throttled")] Throttled,
    /// <summary>Workers took it again and again and never finished it (each stopped while holding it) until the queue
    /// gave up on it: SQS's redrive policy, the backstop for a message that kills its worker.</summary>
    [JsonStringEnumMemberName("abandoned")] Abandoned,
}

[JsonConverter(typeof(JsonStringEnumConverter<RecipientState>))]
public enum RecipientState
{
    [JsonStringEnumMemberName("pending")] Pending,
    [JsonStringEnumMemberName("sent")] Sent,
    [JsonStringEnumMemberName("failed")] Failed,
    /// <summary>On the suppression list when the message went: not sent to, on purpose; the reply says why.</summary>
    [JsonStringEnumMemberName("suppressed")] Suppressed,
    /// <summary>Accepted with a <c>send_at</c> still ahead: waiting for that time, and until then cancellable.</summary>
    [JsonStringEnumMemberName("scheduled")] Scheduled,
    /// <summary>Cancelled while scheduled: never sent, and never will be (finished; publishing the id again changes
    /// nothing).</summary>
    [JsonStringEnumMemberName("cancelled")] Cancelled,
}

/// <summary>One recipient's outcome so far, with the relay's last answer about it.</summary>
public sealed record RecipientStatus(string Address, RecipientState State, int? SmtpCode = null, string? Reply = null);

/// <summary>Everything the delivery log knows of one message id. <see cref="AttemptsUsed"/> counts the attempts that
/// count towards <c>MaxAttempts</c> since the message was last queued (a redrive starts again from zero);
/// <see cref="Attempts"/> is every attempt ever made. <see cref="SendAt"/>: while <see cref="MessageState.Scheduled"/>, the
/// time it is not to be sent before.</summary>
public sealed record DeliveryRecord(
    string Id,
    MessageState State,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    string? LastReason,
    FailureClass? FailureClass,
    int AttemptsUsed,
    IReadOnlyList<RecipientStatus> Recipients,
    IReadOnlyList<DeliveryAttempt> Attempts,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    DateTimeOffset? SendAt = null);

/// <summary>One try at the relay. <see cref="Outcome"/> is <c>sent</c>, <c>partial</c> (some recipients accepted,
/// others still waiting), <c>retry</c>, <c>rejected</c> or <c>invalid</c>; <see cref="Reply"/> is the server's answer
/// or the error; <see cref="Recipients"/> holds each recipient's answer when they differed; <see cref="Relay"/> says
/// which relay took it, <c>primary</c> or <c>fallback</c> (null: no relay was asked, or it was recorded before ion
/// had a fallback).</summary>
public sealed record DeliveryAttempt(
    DateTimeOffset At,
    string Outcome,
    int? SmtpCode,
    string Reply,
    TimeSpan Duration,
    IReadOnlyList<RecipientStatus>? Recipients = null,
    string? Relay = null);

/// <summary>A message that will not be delivered without a redrive: why, after how many attempts, and who got it
/// anyway.</summary>
public sealed record DeadLetter(
    string Id,
    string Body,
    string Reason,
    FailureClass FailureClass,
    int Attempts,
    DateTimeOffset EnqueuedAt,
    DateTimeOffset DeadAt,
    IReadOnlyList<RecipientStatus> Recipients);

/// <summary>Which dead letters to list: oldest first, at most <see cref="Limit"/>, optionally only of a failure
/// class, with a recipient in a domain, or dead within a time range.</summary>
public sealed record DeadLetterQuery(
    int Limit = 100,
    FailureClass? FailureClass = null,
    string? RecipientDomain = null,
    DateTimeOffset? DeadSince = null,
    DateTimeOffset? DeadBefore = null);

/// <summary>One minute of delivery, from <see cref="Minute"/>: attempts that reached every recipient, and failures
/// (see <see cref="IDeliveryLog.GetThroughputAsync"/>).</summary>
public sealed record MinuteActivity(DateTimeOffset Minute, int Sent, int Failed);

/// <summary>A message that finished (sent or dead) at <see cref="FinishedAt"/>, after <see cref="Attempts"/> attempts
/// in all; <see cref="Reason"/> and <see cref="FailureClass"/> say why a dead one is dead.</summary>
public sealed record FinishedMessage(
    string Id,
    MessageState State,
    DateTimeOffset FinishedAt,
    int Attempts,
    IReadOnlyList<RecipientStatus> Recipients,
    string? Reason,
    FailureClass? FailureClass);
