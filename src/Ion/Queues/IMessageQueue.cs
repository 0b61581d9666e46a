namespace Ion.Queues;

/// <summary>
/// A durable queue with SQS semantics: a received message is hidden for the visibility timeout,
/// and becomes visible again unless it is completed, retried, released or dead-lettered.
/// Ordering is not promised. Implemented by each store (the SQLite file on one machine, SQS on AWS).
/// </summary>
public interface IMessageQueue
{
    /// <summary>Stores the messages durably; returns only once they are on disk.</summary>
    Task EnqueueAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken);

    /// <summary>Takes up to <paramref name="maxMessages"/> visible messages and hides them for the visibility timeout.
    /// When none is visible it may wait a while for some (long polling) before returning empty.</summary>
    Task<IReadOnlyList<QueuedMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken);

    /// <summary>Deletes messages that were handled, together (SQS: DeleteMessageBatch). A stale receipt (the message was
    /// redelivered since) is ignored.</summary>
    Task CompleteAsync(IReadOnlyList<QueuedMessage> messages, CancellationToken cancellationToken);

    /// <summary>This attempt failed: counts it and makes the message visible again after <paramref name="delay"/>.</summary>
    Task RetryLaterAsync(QueuedMessage message, TimeSpan delay, CancellationToken cancellationToken);

    /// <summary>Gives the message back without counting an attempt (the relay, not the message, was at fault).</summary>
    Task ReleaseAsync(QueuedMessage message, TimeSpan delay, CancellationToken cancellationToken);

    /// <summary>This attempt failed for good: counts it and moves the message to the dead letters with the reason.</summary>
    Task DeadLetterAsync(QueuedMessage message, string reason, CancellationToken cancellationToken);

    /// <summary>Dead letters, oldest first.</summary>
    Task<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(int limit, CancellationToken cancellationToken);

    /// <summary>Moves dead letters back to the queue with fresh attempts: all of them, or those with the given ids.
    /// Returns the ids moved.</summary>
    Task<IReadOnlyList<string>> RedriveAsync(IReadOnlyCollection<string>? ids, CancellationToken cancellationToken);

    /// <summary>How many messages are waiting, in flight and dead (for health, metrics and the dashboard).</summary>
    Task<QueueCounts> CountAsync(CancellationToken cancellationToken);
}

/// <summary>A message to enqueue: its id (the client's idempotency key, or one ion made) and the raw JSON body.</summary>
public sealed record OutgoingMessage(string Id, string Body);

/// <summary>A received message. <see cref="Attempts"/> counts the delivery attempts already spent before this one;
/// <see cref="ReceiptHandle"/> identifies this receipt.</summary>
public sealed record QueuedMessage(
    string Id,
    string Body,
    int Attempts,
    int ReceiveCount,
    DateTimeOffset EnqueuedAt,
    string ReceiptHandle);

/// <summary>A message that will not be delivered without a redrive, with why and after how many attempts.</summary>
public sealed record DeadLetter(
    string Id,
    string Body,
    string Reason,
    int Attempts,
    DateTimeOffset EnqueuedAt,
    DateTimeOffset DeadAt);

/// <summary><see cref="Ready"/>: visible now; <see cref="Delayed"/>: hidden (in flight or waiting for a retry);
/// <see cref="Dead"/>: dead letters.</summary>
public sealed record QueueCounts(long Ready, long Delayed, long Dead);
