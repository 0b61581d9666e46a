namespace Ion.Log;

/// <summary>
/// Every attempt and the current state of each message id: what people and the idempotency check read. Implemented
/// by each store (the SQLite file on one machine).
/// </summary>
public interface IDeliveryLog
{
    /// <summary>Records messages as queued (published, or redriven) at <paramref name="enqueuedAt"/>, a time taken
    /// before they went on the queue.</summary>
    Task RecordQueuedAsync(IReadOnlyList<string> ids, DateTimeOffset enqueuedAt, CancellationToken cancellationToken);

    /// <summary>Records attempts and the states they leave their messages in, together.</summary>
    Task RecordAttemptsAsync(IReadOnlyList<AttemptRecord> records, CancellationToken cancellationToken);

    /// <summary>Which of these ids were sent already (the idempotency check, one query for a whole batch).</summary>
    Task<IReadOnlySet<string>> SentAmongAsync(IReadOnlyCollection<string> ids, CancellationToken cancellationToken);

    Task<DeliveryRecord?> GetAsync(string id, CancellationToken cancellationToken);

    /// <summary>Forgets messages that reached a final state before <paramref name="olderThan"/> ago.</summary>
    Task<int> PruneAsync(TimeSpan olderThan, CancellationToken cancellationToken);
}

/// <summary>One attempt to record, with the state it leaves the message in and, for dead or retrying messages,
/// why (defaults to the attempt's reply).</summary>
public sealed record AttemptRecord(string Id, DeliveryAttempt Attempt, MessageState State, string? Reason = null);
