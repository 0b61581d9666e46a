using Ion.Log;

namespace Ion.Queues;

/// <summary>
/// A durable queue with SQS semantics, asking only for what SQS can do: a received message is hidden for the
/// visibility timeout and becomes visible again unless it is completed, returned or dead-lettered. Ordering is not
/// promised. Attempt counts, per-recipient outcomes and the dead-letter listing live in the delivery log, not here.
/// Implemented by each store (the SQLite file on one machine, SQS on AWS).
/// </summary>
public interface IMessageQueue
{
    /// <summary>The most messages one receive returns (SQS's limit).</summary>
    const int MaxReceive = 10;

    /// <summary>Stores the messages durably; returns only once they are on disk, with one result per message in
    /// the same order.</summary>
    Task<IReadOnlyList<EnqueueResult>> EnqueueAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken);

    /// <summary>Takes up to <paramref name="maxMessages"/> (at most <see cref="MaxReceive"/>) visible messages and hides
    /// them for the visibility timeout. When none is visible it may wait a while for some (long polling). Cancelled, it
    /// throws <see cref="OperationCanceledException"/> and leaves nothing hidden: a wait the store cannot cut short (SQS's
    /// long poll) is waited for, and what it brings given back at once.</summary>
    Task<IReadOnlyList<QueuedMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken);

    /// <summary>Keeps messages this worker holds hidden for another visibility timeout from now (the heartbeat of a
    /// worker that is still busy with them). Returns, per message, whether it is still this worker's: false when its
    /// receipt is stale (the timeout ran out and another receive took it, or it is gone).</summary>
    Task<IReadOnlyList<bool>> KeepHiddenAsync(IReadOnlyList<QueuedMessage> messages, CancellationToken cancellationToken);

    /// <summary>Gives messages back: visible again after <paramref name="delay"/> (zero: at once). A retry later, or a
    /// release. A stale receipt is ignored.</summary>
    Task ReturnAsync(IReadOnlyList<QueuedMessage> messages, TimeSpan delay, CancellationToken cancellationToken);

    /// <summary>Deletes messages that were handled, together (SQS: DeleteMessageBatch). A stale receipt is ignored.</summary>
    Task CompleteAsync(IReadOnlyList<QueuedMessage> messages, CancellationToken cancellationToken);

    /// <summary>Moves a received message to the dead-letter queue, with why.</summary>
    Task DeadLetterAsync(QueuedMessage message, DeadLetterNote note, CancellationToken cancellationToken);

    /// <summary>Moves dead letters back to the queue: those with the given ids, or all of them (null). Returns the ids
    /// moved; two redrives at once move each message once.</summary>
    Task<IReadOnlyList<string>> RedriveAsync(IReadOnlyCollection<string>? ids, CancellationToken cancellationToken);

    /// <summary>How many messages are waiting, hidden and dead (for health, metrics and the dashboard).</summary>
    Task<QueueCounts> CountAsync(CancellationToken cancellationToken);

    /// <summary>The store's own limit on a message's size, below <c>Ion:MaxMessageBytes</c>; null when it has none.</summary>
    MessageSizeLimit? SizeLimit { get; }
}

/// <summary>The largest body a store takes, in UTF-8 bytes, with the limit's name for the error that refuses a larger one.</summary>
public sealed record MessageSizeLimit(long MaxBodyBytes, string Name);

/// <summary>A message to enqueue: its id (the client's idempotency key, or one ion made) and the raw JSON body.
/// <see cref="Copy"/>, when set, names this copy in advance (unique per enqueue): a store that can carry the name with
/// the message (SQS: the <c>ion-copy</c> attribute) receives it back as the copy's
/// <see cref="QueuedMessage.QueueMessageId"/>; a store that names copies itself (SQLite) ignores it. <see cref="Events"/>
/// (its <c>accepted</c> event) a store with an event outbox writes in the enqueue's own transaction, when it queues it.
/// <see cref="NotBefore"/>: a scheduled message's <c>send_at</c>; the store keeps it hidden until then, or for as long
/// as it can (SQS: 15 minutes), and delivery hides it again for the rest. <see cref="PayloadBytes"/> is set by a store
/// that put the body elsewhere and <see cref="Body"/> points to it: the size of what it points to.</summary>
public sealed record OutgoingMessage(string Id, string Body, string? Copy = null, IReadOnlyList<Events.OutboxEvent>? Events = null,
    DateTimeOffset? NotBefore = null, int? PayloadBytes = null)
{
    /// <summary>Starts every name ion gives a copy and no name a store gives one (SQS's MessageIds are UUIDs), so the
    /// delivery log can tell a copy whose claim its publish may have recorded from the rest.</summary>
    public const string CopyPrefix = "ion-";

    /// <summary>A new name for a copy, unique per enqueue.</summary>
    public static string NewCopy() => CopyPrefix + Messages.MessageIds.New();
}

public enum EnqueueResult
{
    /// <summary>On the queue now.</summary>
    Queued,
    /// <summary>A message with this id was already waiting or in flight; nothing was added (a store that can tell;
    /// SQS cannot, and delivery dedupes instead).</summary>
    AlreadyQueued,
}

/// <summary>A received message. <see cref="QueueMessageId"/> names this copy of the message in the store (the same
/// over every receive of it; a store may give the name to another copy once this one is gone);
/// <see cref="ReceiptHandle"/> names this receive. <see cref="EnqueuedAt"/> is when this copy was put on the queue.</summary>
public sealed record QueuedMessage(
    string Id,
    string Body,
    DateTimeOffset EnqueuedAt,
    int ReceiveCount,
    string QueueMessageId,
    string ReceiptHandle,
    OffloadedBody? Offloaded = null)
{
    /// <summary>The body as the store holds it: the pointer of an offloaded message, which is what a copy of it sent
    /// again (a dead letter, a renewal, a record of it) keeps, else the body.</summary>
    public string StoredBody => Offloaded?.Reference ?? Body;
}

/// <summary>A message whose body the store keeps elsewhere, with only <see cref="Reference"/> in the queue (on AWS, a
/// message too large for SNS, in S3). A dead letter keeps the pointer, not the body, so that it stays as small as the
/// queue needs; <see cref="Error"/> says why the body could not be read (gone from where it was kept), and the message
/// is then a dead letter for that reason.</summary>
public sealed record OffloadedBody(string Reference, string? Error = null);

/// <summary>What travels with a dead letter in the store (SQS: message attributes), beside the delivery log's record.</summary>
public sealed record DeadLetterNote(string Reason, FailureClass Class, int Attempts, int? SmtpCode);

/// <summary><see cref="Ready"/>: visible now; <see cref="Delayed"/>: hidden (in flight or waiting for a retry);
/// <see cref="Dead"/>: dead letters.
/// <see cref="OldestEnqueuedAt"/>: when the oldest message still in the queue was queued, where the store can say cheaply
/// (SQLite; SQS has it only in CloudWatch, as ApproximateAgeOfOldestMessage).</summary>
public sealed record QueueCounts(long Ready, long Delayed, long Dead, DateTimeOffset? OldestEnqueuedAt = null);
