namespace Ion.Log;

/// <summary>
/// The record of every message id: its state, its attempts, each recipient's outcome, and the claim that makes an
/// id delivered at most once however many copies of it the queue holds. Implemented by each store (the SQLite file
/// on one machine, DynamoDB on AWS) with single-row conditional writes only.
/// </summary>
public interface IDeliveryLog
{
    /// <summary>Records published messages as queued at <paramref name="at"/>, before they go on the queue, and
    /// returns the states of those ids the log knew already, which keep what they have: a repeated publish changes
    /// nothing. One write does both, so publishing costs no extra look-up.</summary>
    Task<IReadOnlyDictionary<string, MessageState>> RecordQueuedAsync(IReadOnlyList<string> ids, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>The same, for messages about to go on the queue as the copies <paramref name="copies"/> names
    /// (<c>copies[i]</c> for <c>ids[i]</c>: the <see cref="Queues.OutgoingMessage.Copy"/> it is enqueued with). A
    /// store may record an id it did not know as claimed by that copy already, so that the copy's first
    /// <see cref="ClaimAsync"/> needs no write (DynamoDB, where every write is paid for); a store that keeps one copy
    /// per id (SQLite) has no use for the names, and by default they are not used.</summary>
    Task<IReadOnlyDictionary<string, MessageState>> RecordQueuedAsync(IReadOnlyList<string> ids, IReadOnlyList<string> copies, DateTimeOffset at,
        CancellationToken cancellationToken) => RecordQueuedAsync(ids, at, cancellationToken);

    /// <summary>Records published messages with a <c>send_at</c> still ahead as <see cref="MessageState.Scheduled"/> until
    /// <paramref name="sendAt"/> (<c>sendAt[i]</c> for <c>ids[i]</c>), as <see cref="RecordQueuedAsync(IReadOnlyList{string}, DateTimeOffset, CancellationToken)"/>
    /// records the others, and returns the states of the ids it knew already, which keep what they have. Each counts as
    /// queued from its time (<see cref="DeliveryHistory.QueuedAt"/>), so that the time a message may wait for delivery
    /// (<c>Ion:Delivery:MaxQueueTime</c>) starts when it is due, not when it was published. No claim is
    /// recorded for them (whatever the store does for queued ones): a claim would make a cancel see them as being sent.
    /// A claim is granted only from their time on; before it, <see cref="ClaimAsync"/> answers
    /// <see cref="ClaimStatus.Scheduled"/>.</summary>
    Task<IReadOnlyDictionary<string, MessageState>> RecordScheduledAsync(IReadOnlyList<string> ids, IReadOnlyList<DateTimeOffset> sendAt, DateTimeOffset at,
        CancellationToken cancellationToken);

    /// <summary>Cancels a scheduled message that no copy is being delivered by: it becomes
    /// <see cref="MessageState.Cancelled"/>, and the copy still on the queue is completed unsent when it comes up
    /// (<see cref="ClaimStatus.Cancelled"/>). One conditional write, so a cancel and a claim never both win.</summary>
    Task<CancelResult> CancelAsync(string id, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>Marks dead letters as being redriven, before they move: a copy that reaches a worker before
    /// <see cref="RecordRedrivenAsync"/> ran (or after a crash in between) is then delivered, not dead-lettered again.</summary>
    Task BeginRedriveAsync(IReadOnlyList<string> ids, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>Records redriven messages as queued again, with fresh attempts: failed recipients wait again, those
    /// that got the message are not sent it again.</summary>
    Task RecordRedrivenAsync(IReadOnlyList<string> ids, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>Takes ids for delivery by these queue copies, for <paramref name="lease"/>. Per id: claimed (with its
    /// history), already sent, dead, or held by another copy that claimed it less than a lease ago. The same queue
    /// copy may always claim again: the queue gives a copy to one receiver at a time, so a new receive of it means the
    /// old receiver is gone.</summary>
    Task<IReadOnlyList<Claim>> ClaimAsync(IReadOnlyList<ClaimRequest> requests, TimeSpan lease, CancellationToken cancellationToken);

    /// <summary>Gives claims back without an outcome (a release at shutdown, or while the relay is unavailable).</summary>
    Task ReleaseAsync(IReadOnlyList<ClaimRequest> claims, CancellationToken cancellationToken);

    /// <summary>Records what handling each message came to (an attempt, the state it leaves the message in, each
    /// recipient's outcome) and ends its claim. Must be durable enough that a sent message is never sent again
    /// because of a lost record; it is retried until it succeeds.</summary>
    Task RecordAsync(IReadOnlyList<DeliveryEntry> entries, CancellationToken cancellationToken);

    Task<DeliveryRecord?> GetAsync(string id, CancellationToken cancellationToken);

    Task<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(DeadLetterQuery query, CancellationToken cancellationToken);

    /// <summary>What delivery did per minute, for the minutes starting at or after <paramref name="since"/>'s (only
    /// those with any, oldest first): attempts that reached every recipient, and the rest (retried later, partly sent,
    /// refused, invalid) together with messages dead-lettered without an attempt. Null when the store keeps no such
    /// history.</summary>
    Task<IReadOnlyList<MinuteActivity>?> GetThroughputAsync(DateTimeOffset since, CancellationToken cancellationToken);

    /// <summary>The messages that finished last (sent or dead), newest first, at most <paramref name="limit"/>. Null
    /// when the store cannot tell without reading the whole log.</summary>
    Task<IReadOnlyList<FinishedMessage>?> ListRecentAsync(int limit, CancellationToken cancellationToken);

    /// <summary>Forgets finished messages (sent or dead) that were first queued before <paramref name="before"/>; a
    /// message still waiting is kept, however old.</summary>
    Task<int> PruneAsync(DateTimeOffset before, CancellationToken cancellationToken);
}

/// <summary>A claim on <see cref="Id"/> by the queue copy <see cref="Holder"/> (its <c>QueueMessageId</c>), which was put on
/// the queue at <see cref="EnqueuedAt"/> (used as the queued time of an id the log has never seen).</summary>
public sealed record ClaimRequest(string Id, string Holder, DateTimeOffset EnqueuedAt);

public enum ClaimStatus
{
    /// <summary>This copy may deliver it; <see cref="Claim.History"/> says what happened so far.</summary>
    Claimed,
    /// <summary>Finished without a failure: every recipient has it already, or is suppressed. Complete the copy.</summary>
    AlreadySent,
    /// <summary>It is a dead letter (and not being redriven): this copy joins it there.</summary>
    Dead,
    /// <summary>Another copy is being delivered: look again after <see cref="Claim.HeldUntil"/>.</summary>
    HeldByOther,
    /// <summary>Scheduled for later: look again at <see cref="Claim.HeldUntil"/>, its <c>send_at</c>.</summary>
    Scheduled,
    /// <summary>Cancelled while scheduled: complete the copy without sending it.</summary>
    Cancelled,
}

/// <summary>What <see cref="IDeliveryLog.CancelAsync"/> came to: <see cref="CancelOutcome.Cancelled"/> (now, or
/// before), or why not, with the state the message is in (null when the id is unknown).</summary>
public sealed record CancelResult(CancelOutcome Outcome, MessageState? State);

public enum CancelOutcome
{
    /// <summary>It is cancelled (by this call or an earlier one).</summary>
    Cancelled,
    /// <summary>The log does not know the id.</summary>
    Unknown,
    /// <summary>Its time came and a copy is being delivered now.</summary>
    BeingSent,
    /// <summary>Not scheduled: queued without a time, retrying, sent, dead or suppressed.</summary>
    NotScheduled,
}

public sealed record Claim(string Id, ClaimStatus Status, DeliveryHistory History, DateTimeOffset? HeldUntil = null);

/// <summary>What the log knows when a message is taken for delivery: attempts counted since it was last queued, when
/// that was, the last failure, each recipient's outcome so far (empty when nothing was tried yet), and the time before
/// which it is not to be tried (a retry's backoff, kept here because a queue may not hide a message that long).</summary>
public sealed record DeliveryHistory(
    int AttemptsUsed,
    DateTimeOffset QueuedAt,
    IReadOnlyList<RecipientStatus> Recipients,
    string? LastReason = null,
    FailureClass? FailureClass = null,
    DateTimeOffset? NotBefore = null)
{
    /// <summary>How close to <see cref="NotBefore"/> a message counts as due: clocks of different hosts, and a queue's
    /// own rounding to whole seconds (SQS).</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(1);

    public static DeliveryHistory New(DateTimeOffset queuedAt) => new(0, queuedAt, []);
}

/// <summary>What handling one message came to: <see cref="Attempt"/> (null when nothing was tried, e.g. a message too
/// old to try), the state and recipients it leaves, the attempts counted so far, for a dead letter why and its body
/// (kept with the record so dead letters can be listed from the log), for a retry when it may be tried again, and the
/// delivery events it causes, which a store with an event outbox keeps with the entry: in the same transaction (SQLite),
/// or published before it is written (AWS), so that an outcome is never recorded without its events.</summary>
public sealed record DeliveryEntry(
    string Id,
    string Holder,
    MessageState State,
    DeliveryAttempt? Attempt,
    IReadOnlyList<RecipientStatus> Recipients,
    int AttemptsUsed,
    string? Reason = null,
    FailureClass? FailureClass = null,
    string? Body = null,
    DateTimeOffset? NotBefore = null,
    IReadOnlyList<Events.OutboxEvent>? Events = null);
