using Ion.Log;

namespace Ion.Tests.Log;

// What every IDeliveryLog backend must do, like QueueContract for the queues: the SQLite log passes it now, the
// DynamoDB log will pass it unchanged. Real time only, since an emulator's clock can't be faked; the few timed
// assertions use short leases and wide margins.
public abstract class DeliveryLogContract
{
    protected static readonly TimeSpan Lease = TimeSpan.FromMinutes(10);

    /// <summary>A fresh, empty log for one test. The subclass owns and disposes it.</summary>
    protected abstract Task<IDeliveryLog> CreateLogAsync();

    protected static CancellationToken Cancellation => TestContext.Current.CancellationToken;

    protected static DateTimeOffset Now => TimeProvider.System.GetUtcNow();

    /// <summary>Whether the store keeps the history the dashboard shows (throughput per minute, the latest finished
    /// messages). One that does not must say so with null, never with an empty or partial answer.</summary>
    protected virtual bool KeepsHistory => true;

    [Fact]
    public async Task RecordQueued_RecordsNewIds_AndSaysWhichItKnewAlready_WithTheirStates()
    {
        var log = await CreateLogAsync();

        Assert.Empty(await log.RecordQueuedAsync(["a", "b"], Now, Cancellation));
        await SendAsync(log, "b", "q-b");

        var known = await log.RecordQueuedAsync(["a", "b", "c"], Now, Cancellation);
        Assert.Equal(new Dictionary<string, MessageState> { ["a"] = MessageState.Queued, ["b"] = MessageState.Sent }, known);
        Assert.NotNull(await log.GetAsync("c", Cancellation));
        var record = await log.GetAsync("a", Cancellation);
        Assert.NotNull(record);
        Assert.Equal(MessageState.Queued, record.State);
        Assert.Empty(record.Attempts);
        Assert.Null(await log.GetAsync("d", Cancellation));
    }

    [Fact]
    public async Task RecordQueued_OfAKnownId_ChangesNothing()
    {
        var log = await CreateLogAsync();
        var first = Now.AddMinutes(-5);
        await log.RecordQueuedAsync(["a"], first, Cancellation);
        await SendAsync(log, "a", "q1");

        Assert.Equal(MessageState.Sent, (await log.RecordQueuedAsync(["a"], Now, Cancellation))["a"]);

        var record = await log.GetAsync("a", Cancellation);
        Assert.Equal(MessageState.Sent, record!.State);
        Assert.Single(record.Attempts);
    }

    [Fact]
    public async Task Claim_OfANewId_IsGranted_AndStartsItsRecord()
    {
        var log = await CreateLogAsync();
        var enqueued = Now.AddSeconds(-30);

        var claim = Assert.Single(await log.ClaimAsync([new ClaimRequest("a", "q1", enqueued)], Lease, Cancellation));

        Assert.Equal(ClaimStatus.Claimed, claim.Status);
        Assert.Equal(0, claim.History.AttemptsUsed);
        Assert.Empty(claim.History.Recipients);
        Assert.InRange(claim.History.QueuedAt, enqueued.AddSeconds(-1), enqueued.AddSeconds(1));
        Assert.Equal(MessageState.Queued, (await log.GetAsync("a", Cancellation))!.State);
    }

    [Fact]
    public async Task Claim_ByAnotherCopy_WhileHeld_IsRefused_UntilReleased()
    {
        var log = await CreateLogAsync();
        await log.RecordQueuedAsync(["a"], Now, Cancellation);
        Assert.Equal(ClaimStatus.Claimed, (await ClaimAsync(log, "a", "copy-1")).Status);

        var other = await ClaimAsync(log, "a", "copy-2");
        Assert.Equal(ClaimStatus.HeldByOther, other.Status);
        Assert.NotNull(other.HeldUntil);
        Assert.True(other.HeldUntil > Now.AddMinutes(5), $"held until {other.HeldUntil}");

        await log.ReleaseAsync([new ClaimRequest("a", "copy-1", Now)], Cancellation);
        Assert.Equal(ClaimStatus.Claimed, (await ClaimAsync(log, "a", "copy-2")).Status);
    }

    [Fact]
    public async Task Claim_ByTheSameCopy_Again_IsGranted()
    {
        var log = await CreateLogAsync();
        Assert.Equal(ClaimStatus.Claimed, (await ClaimAsync(log, "a", "copy-1")).Status);

        // The queue gives a copy to one receiver at a time: a new receive of it means the old receiver is gone.
        Assert.Equal(ClaimStatus.Claimed, (await ClaimAsync(log, "a", "copy-1")).Status);
    }

    [Fact]
    public async Task Claim_AfterTheLeaseRanOut_IsGranted_ToAnotherCopy()
    {
        var log = await CreateLogAsync();
        Assert.Single(await log.ClaimAsync([new ClaimRequest("a", "copy-1", Now)], TimeSpan.FromMilliseconds(200), Cancellation));
        await Task.Delay(TimeSpan.FromMilliseconds(600), Cancellation);

        Assert.Equal(ClaimStatus.Claimed, (await ClaimAsync(log, "a", "copy-2")).Status);
    }

    [Fact]
    public async Task RecordQueued_WithTheCopiesNamed_RecordsTheSame_AndThatCopyClaimsIt()
    {
        var log = await CreateLogAsync();
        Assert.Empty(await log.RecordQueuedAsync(["a"], ["copy-1"], Now, Cancellation));

        Assert.Equal(MessageState.Queued, (await log.RecordQueuedAsync(["a"], ["copy-2"], Now, Cancellation))["a"]);
        Assert.Equal(MessageState.Queued, (await log.GetAsync("a", Cancellation))!.State);
        var claim = await ClaimAsync(log, "a", "copy-1");
        Assert.Equal(ClaimStatus.Claimed, claim.Status);
        Assert.Equal(0, claim.History.AttemptsUsed);
        await SendAsync(log, "a", "copy-1");
        Assert.Equal(ClaimStatus.AlreadySent, (await ClaimAsync(log, "a", "copy-2")).Status);
    }

    [Fact]
    public async Task Claim_OfASentId_SaysAlreadySent()
    {
        var log = await CreateLogAsync();
        await SendAsync(log, "a", "copy-1");

        Assert.Equal(ClaimStatus.AlreadySent, (await ClaimAsync(log, "a", "copy-2")).Status);
        Assert.Equal(ClaimStatus.AlreadySent, (await ClaimAsync(log, "a", "copy-1")).Status);
    }

    [Fact]
    public async Task Claims_ForABatch_AnswerEachIdInOrder()
    {
        var log = await CreateLogAsync();
        await SendAsync(log, "sent", "q0");
        Assert.Equal(ClaimStatus.Claimed, (await ClaimAsync(log, "held", "q1")).Status);

        var claims = await log.ClaimAsync(
        [
            new ClaimRequest("new", "q2", Now),
            new ClaimRequest("sent", "q3", Now),
            new ClaimRequest("held", "q4", Now),
        ], Lease, Cancellation);

        Assert.Equal(["new", "sent", "held"], claims.Select(c => c.Id));
        Assert.Equal([ClaimStatus.Claimed, ClaimStatus.AlreadySent, ClaimStatus.HeldByOther], claims.Select(c => c.Status));
    }

    [Fact]
    public async Task Record_KeepsTheAttempt_TheRecipients_AndTheCountOfAttempts_ForTheNextClaim()
    {
        var log = await CreateLogAsync();
        var claim = await ClaimAsync(log, "a", "q1");
        var at = Now;
        RecipientStatus[] recipients =
        [
            new("one@example.com", RecipientState.Sent, 250, "2.0.0 Ok"),
            new("two@example.com", RecipientState.Pending, 452, "452 4.2.2 Mailbox full"),
            new("three@example.com", RecipientState.Failed, 550, "rejected: 550 5.1.1 No such user"),
        ];

        await log.RecordAsync([new DeliveryEntry("a", "q1", MessageState.Retrying,
            new DeliveryAttempt(at, "partial", 250, "250 2.0.0 Ok", TimeSpan.FromMilliseconds(42), recipients), recipients, 1, "452 4.2.2 Mailbox full")], Cancellation);

        var record = await log.GetAsync("a", Cancellation);
        Assert.Equal(MessageState.Retrying, record!.State);
        Assert.Equal(1, record.AttemptsUsed);
        Assert.Equal("452 4.2.2 Mailbox full", record.LastReason);
        Assert.Equal(recipients, record.Recipients);
        var attempt = Assert.Single(record.Attempts);
        Assert.Equal("partial", attempt.Outcome);
        Assert.Equal(250, attempt.SmtpCode);
        Assert.Equal(TimeSpan.FromMilliseconds(42), attempt.Duration);
        Assert.InRange(attempt.At, at.AddMilliseconds(-1), at.AddMilliseconds(1));
        Assert.Equal(recipients, attempt.Recipients);

        // The record ended the claim: another copy may take it, and sees the history.
        var next = await ClaimAsync(log, "a", "q2");
        Assert.Equal(ClaimStatus.Claimed, next.Status);
        Assert.Equal(1, next.History.AttemptsUsed);
        Assert.Equal(recipients, next.History.Recipients);
        Assert.Equal("452 4.2.2 Mailbox full", next.History.LastReason);
    }

    [Fact]
    public async Task EachAttempt_KeepsWhichRelayTookIt_AndAnAttemptWithoutOneStaysWithout()
    {
        var log = await CreateLogAsync();
        await ClaimAsync(log, "a", "q1");
        RecipientStatus[] pending = [new("x@example.com", RecipientState.Pending, 451, "451 later")];
        await log.RecordAsync([new DeliveryEntry("a", "q1", MessageState.Retrying,
            new DeliveryAttempt(Now, "retry", 451, "451 later", TimeSpan.Zero, Relay: "primary"), pending, 1, "451 later")], Cancellation);
        await ClaimAsync(log, "a", "q1");
        RecipientStatus[] sent = [new("x@example.com", RecipientState.Sent, 250, "250 Ok")];
        await log.RecordAsync([new DeliveryEntry("a", "q1", MessageState.Sent,
            new DeliveryAttempt(Now, "sent", 250, "250 Ok", TimeSpan.Zero, Relay: "fallback"), sent, 2)], Cancellation);
        await ClaimAsync(log, "b", "q2");
        await log.RecordAsync([new DeliveryEntry("b", "q2", MessageState.Sent,
            new DeliveryAttempt(Now, "sent", 250, "250 Ok", TimeSpan.Zero), sent, 1)], Cancellation);

        Assert.Equal(["primary", "fallback"], (await log.GetAsync("a", Cancellation))!.Attempts.Select(a => a.Relay));
        Assert.Null(Assert.Single((await log.GetAsync("b", Cancellation))!.Attempts).Relay);
    }

    [Fact]
    public async Task ARetrysTime_IsKept_UntilTheNextOutcome()
    {
        var log = await CreateLogAsync();
        await ClaimAsync(log, "a", "q1");
        var notBefore = Now.AddDays(2);

        await log.RecordAsync([new DeliveryEntry("a", "q1", MessageState.Retrying, new DeliveryAttempt(Now, "retry", 451, "451 later", TimeSpan.Zero),
            [new("x@example.com", RecipientState.Pending)], 1, "451 later", NotBefore: notBefore)], Cancellation);

        var claim = await ClaimAsync(log, "a", "q1");
        Assert.NotNull(claim.History.NotBefore);
        Assert.InRange(claim.History.NotBefore.Value, notBefore.AddMilliseconds(-1), notBefore.AddMilliseconds(1));
        await SendAsync(log, "a", "q1");
        Assert.Null((await ClaimAsync(log, "a", "q1")).History.NotBefore);
    }

    [Fact]
    public async Task Sent_IsNeverUndone_ByALateOutcomeOfAnotherCopy()
    {
        var log = await CreateLogAsync();
        await SendAsync(log, "a", "q1");

        await log.RecordAsync([new DeliveryEntry("a", "q2", MessageState.Retrying,
            new DeliveryAttempt(Now, "retry", 451, "451 try later", TimeSpan.Zero), [new("x@example.com", RecipientState.Pending)], 2, "451 try later")], Cancellation);

        Assert.Equal(MessageState.Sent, (await log.GetAsync("a", Cancellation))!.State);
    }

    [Fact]
    public async Task Dead_IsListed_WithBodyReasonClassAttemptsAndRecipients_AndClaimsSayDead()
    {
        var log = await CreateLogAsync();
        await DeadAsync(log, "a", "body of a", FailureClass.Permanent, "rejected: 550 5.1.1 No such user", "bob@example.com");

        var dead = Assert.Single(await log.ListDeadLettersAsync(new DeadLetterQuery(), Cancellation));
        Assert.Equal("a", dead.Id);
        Assert.Equal("body of a", dead.Body);
        Assert.Equal("rejected: 550 5.1.1 No such user", dead.Reason);
        Assert.Equal(FailureClass.Permanent, dead.FailureClass);
        Assert.Equal(1, dead.Attempts);
        Assert.True(dead.DeadAt >= dead.EnqueuedAt);
        Assert.Equal("bob@example.com", Assert.Single(dead.Recipients).Address);

        var claim = await ClaimAsync(log, "a", "copy-2");
        Assert.Equal(ClaimStatus.Dead, claim.Status);
        Assert.Equal("rejected: 550 5.1.1 No such user", claim.History.LastReason);
        Assert.Equal(FailureClass.Permanent, claim.History.FailureClass);
    }

    [Fact]
    public async Task DeadLetters_AreListedOldestFirst_UpToTheLimit_AndFiltered()
    {
        var log = await CreateLogAsync();
        await DeadAsync(log, "first", "{}", FailureClass.Permanent, "550", "a@one.example");
        await Task.Delay(20, Cancellation);
        var between = Now;
        await Task.Delay(20, Cancellation);
        await DeadAsync(log, "second", "{}", FailureClass.Transient, "gave up", "b@two.example");
        await DeadAsync(log, "third", "{}", FailureClass.Permanent, "550", "c@two.example");

        Assert.Equal(["first", "second"], (await log.ListDeadLettersAsync(new DeadLetterQuery(Limit: 2), Cancellation)).Select(d => d.Id));
        Assert.Equal(["first", "third"], (await log.ListDeadLettersAsync(new DeadLetterQuery(FailureClass: FailureClass.Permanent), Cancellation)).Select(d => d.Id));
        Assert.Equal(["second", "third"], (await log.ListDeadLettersAsync(new DeadLetterQuery(RecipientDomain: "two.example"), Cancellation)).Select(d => d.Id));
        Assert.Equal(["second", "third"], (await log.ListDeadLettersAsync(new DeadLetterQuery(DeadSince: between), Cancellation)).Select(d => d.Id));
        Assert.Equal(["first"], (await log.ListDeadLettersAsync(new DeadLetterQuery(DeadBefore: between), Cancellation)).Select(d => d.Id));
    }

    [Fact]
    public async Task Redriven_IsQueuedAgain_WithFreshAttempts_FailedRecipientsWaitAgain_SentOnesStaySent()
    {
        var log = await CreateLogAsync();
        await ClaimAsync(log, "a", "q1");
        RecipientStatus[] recipients =
        [
            new("got@example.com", RecipientState.Sent, 250, "Ok"),
            new("full@example.com", RecipientState.Failed, 552, "gave up after 5 attempts: 552 5.2.2 Mailbox full"),
        ];
        await log.RecordAsync([new DeliveryEntry("a", "q1", MessageState.Dead, null, recipients, 5, "1 of 2 recipients failed", FailureClass.Transient, "{}")], Cancellation);

        await log.BeginRedriveAsync(["a"], Now, Cancellation);
        await log.RecordRedrivenAsync(["a"], Now, Cancellation);

        Assert.Empty(await log.ListDeadLettersAsync(new DeadLetterQuery(), Cancellation));
        var claim = await ClaimAsync(log, "a", "q2");
        Assert.Equal(ClaimStatus.Claimed, claim.Status);
        Assert.Equal(0, claim.History.AttemptsUsed);
        Assert.Equal(
            [("got@example.com", RecipientState.Sent), ("full@example.com", RecipientState.Pending)],
            claim.History.Recipients.Select(r => (r.Address, r.State)));
    }

    [Fact]
    public async Task ADeadLetterBeingRedriven_IsClaimedAfresh_EvenBeforeTheRedriveIsRecorded()
    {
        var log = await CreateLogAsync();
        await DeadAsync(log, "a", "{}", FailureClass.Permanent, "550", "bob@example.com");

        // The copy reaches a worker between the move and RecordRedriven (or a crash came in between).
        await log.BeginRedriveAsync(["a"], Now, Cancellation);
        var claim = await ClaimAsync(log, "a", "moved-copy");

        Assert.Equal(ClaimStatus.Claimed, claim.Status);
        Assert.Equal(0, claim.History.AttemptsUsed);
        Assert.Equal(RecipientState.Pending, Assert.Single(claim.History.Recipients).State);
        await log.RecordRedrivenAsync(["a"], Now, Cancellation);
        Assert.Equal(MessageState.Queued, (await log.GetAsync("a", Cancellation))!.State);
    }

    [Fact]
    public async Task RecordRedriven_OfAnIdTheLogNeverSaw_StartsItsRecord()
    {
        var log = await CreateLogAsync();

        await log.RecordRedrivenAsync(["stranger"], Now, Cancellation);

        Assert.Equal(MessageState.Queued, (await log.GetAsync("stranger", Cancellation))!.State);
    }

    [Fact]
    public async Task Prune_ForgetsFinishedMessagesOlderThanTheCutOff_AndKeepsTheRest()
    {
        var log = await CreateLogAsync();
        await SendAsync(log, "old-sent", "q1");
        await DeadAsync(log, "old-dead", "{}", FailureClass.Permanent, "550", "x@example.com");
        await log.RecordQueuedAsync(["waiting"], Now.AddDays(-60), Cancellation);
        await Task.Delay(20, Cancellation);

        var removed = await log.PruneAsync(Now, Cancellation);

        Assert.True(removed >= 2, $"removed {removed}");
        Assert.Null(await log.GetAsync("old-sent", Cancellation));
        Assert.Null(await log.GetAsync("old-dead", Cancellation));
        Assert.NotNull(await log.GetAsync("waiting", Cancellation));
    }

    [Fact]
    public async Task IdsWithAnyContractCharacter_RoundTrip()
    {
        var log = await CreateLogAsync();
        const string id = "order/42:a.b_c@d+e=f-g";

        await log.RecordQueuedAsync([id], Now, Cancellation);

        Assert.Equal(id, (await log.GetAsync(id, Cancellation))!.Id);
        Assert.Equal(ClaimStatus.Claimed, (await ClaimAsync(log, id, "q")).Status);
    }

    [Fact]
    public async Task Throughput_CountsPerMinute_AttemptsThatReachedEveryone_AndFailures_OrIsNullWithoutHistory()
    {
        var log = await CreateLogAsync();
        var start = Now;
        await SendAsync(log, "a", "q-a");
        await RetryAsync(log, "b", "q-b");
        await SendAsync(log, "b", "q-b");
        await DeadAsync(log, "c", "{}", FailureClass.Permanent, "rejected: 550 5.1.1 No such user", "c@example.com");
        // Given up without an attempt (too old to try): a failure too.
        await ClaimAsync(log, "d", "q-d");
        await log.RecordAsync([new DeliveryEntry("d", "q-d", MessageState.Dead, null, [new("d@example.com", RecipientState.Pending)], 0,
            "not delivered within 5 days", FailureClass.Relay, "{}")], Cancellation);
        // A late outcome of another copy of a sent message is refused by the log, so it did not happen.
        await log.RecordAsync([new DeliveryEntry("a", "q-a2", MessageState.Retrying,
            new DeliveryAttempt(Now, "retry", 451, "451 later", TimeSpan.Zero), [new("x@example.com", RecipientState.Pending)], 1, "451 later")], Cancellation);

        var minutes = await log.GetThroughputAsync(start, Cancellation);

        if (!KeepsHistory)
        {
            Assert.Null(minutes);
            return;
        }
        Assert.NotNull(minutes);
        Assert.NotEmpty(minutes);
        Assert.Equal(2, minutes.Sum(m => m.Sent));
        Assert.Equal(3, minutes.Sum(m => m.Failed));
        var firstMinute = start.AddTicks(-(start.UtcTicks % TimeSpan.TicksPerMinute));
        Assert.All(minutes, m =>
        {
            Assert.Equal(0, m.Minute.UtcTicks % TimeSpan.TicksPerMinute);
            Assert.InRange(m.Minute, firstMinute, Now);
        });
        Assert.Equal(minutes.OrderBy(m => m.Minute), minutes);
        Assert.Empty((await log.GetThroughputAsync(Now.AddMinutes(2), Cancellation))!);
    }

    [Fact]
    public async Task Recent_ListsFinishedMessages_NewestFirst_UpToTheLimit_OrIsNullWithoutHistory()
    {
        var log = await CreateLogAsync();
        await SendAsync(log, "first", "q1");
        await Task.Delay(20, Cancellation);
        await DeadAsync(log, "second", "{}", FailureClass.Permanent, "rejected: 550 5.1.1 No such user", "bob@example.com");
        await Task.Delay(20, Cancellation);
        await RetryAsync(log, "third", "q3");
        await SendAsync(log, "third", "q3");
        await log.RecordQueuedAsync(["waiting"], Now, Cancellation);
        await RetryAsync(log, "retrying", "q4");

        var recent = await log.ListRecentAsync(10, Cancellation);

        if (!KeepsHistory)
        {
            Assert.Null(recent);
            return;
        }
        Assert.NotNull(recent);
        Assert.Equal(["third", "second", "first"], recent.Select(r => r.Id));
        Assert.Equal(["third", "second"], (await log.ListRecentAsync(2, Cancellation))!.Select(r => r.Id));
        var sent = recent[0];
        Assert.Equal(MessageState.Sent, sent.State);
        Assert.Equal(2, sent.Attempts);
        Assert.Null(sent.Reason);
        Assert.Equal(RecipientState.Sent, Assert.Single(sent.Recipients).State);
        Assert.InRange(sent.FinishedAt, recent[1].FinishedAt, Now);
        var dead = recent[1];
        Assert.Equal(MessageState.Dead, dead.State);
        Assert.Equal(1, dead.Attempts);
        Assert.Equal("rejected: 550 5.1.1 No such user", dead.Reason);
        Assert.Equal(FailureClass.Permanent, dead.FailureClass);
        Assert.Equal(("bob@example.com", RecipientState.Failed), (Assert.Single(dead.Recipients).Address, dead.Recipients[0].State));

        // Redriven, it is waiting again: not finished.
        await log.BeginRedriveAsync(["second"], Now, Cancellation);
        await log.RecordRedrivenAsync(["second"], Now, Cancellation);
        Assert.Equal(["third", "first"], (await log.ListRecentAsync(10, Cancellation))!.Select(r => r.Id));
    }

    [Fact]
    public async Task RecordScheduled_IsScheduled_WithItsTime_AndNotClaimedBeforeIt()
    {
        var log = await CreateLogAsync();
        // Whole milliseconds: what the stores keep.
        var sendAt = DateTimeOffset.FromUnixTimeMilliseconds(Now.AddHours(1).ToUnixTimeMilliseconds());

        Assert.Empty(await log.RecordScheduledAsync(["s"], [sendAt], Now, Cancellation));

        var record = await log.GetAsync("s", Cancellation);
        Assert.Equal(MessageState.Scheduled, record!.State);
        Assert.Equal(sendAt, record.SendAt);
        var claim = await ClaimAsync(log, "s", "q-s");
        Assert.Equal(ClaimStatus.Scheduled, claim.Status);
        Assert.Equal(sendAt, claim.HeldUntil);
        // Publishing it again changes nothing, and says it is scheduled.
        Assert.Equal(MessageState.Scheduled, (await log.RecordQueuedAsync(["s"], Now, Cancellation))["s"]);
        Assert.Equal(MessageState.Scheduled, (await log.RecordScheduledAsync(["s"], [sendAt.AddHours(1)], Now, Cancellation))["s"]);
        Assert.Equal(sendAt, (await log.GetAsync("s", Cancellation))!.SendAt);
    }

    [Fact]
    public async Task Scheduled_IsClaimed_FromItsTimeOn_AndSentAsAnyOther()
    {
        var log = await CreateLogAsync();
        var sendAt = DateTimeOffset.FromUnixTimeMilliseconds(Now.AddSeconds(-1).ToUnixTimeMilliseconds());
        await log.RecordScheduledAsync(["s"], [sendAt], Now.AddMinutes(-5), Cancellation);

        var claim = await ClaimAsync(log, "s", "q-s");
        Assert.Equal(ClaimStatus.Claimed, claim.Status);
        // The time it may wait for delivery counts from its time, not from its publish.
        Assert.Equal(sendAt, claim.History.QueuedAt);
        Assert.Equal(ClaimStatus.HeldByOther, (await ClaimAsync(log, "s", "q-other")).Status);
        await SendAsync(log, "s", "q-s");

        var record = await log.GetAsync("s", Cancellation);
        Assert.Equal(MessageState.Sent, record!.State);
        Assert.Null(record.SendAt);
    }

    [Fact]
    public async Task Cancel_OfAScheduledMessage_MakesItCancelled_ForGood()
    {
        var log = await CreateLogAsync();
        await log.RecordScheduledAsync(["s"], [Now.AddHours(1)], Now, Cancellation);

        Assert.Equal(new CancelResult(CancelOutcome.Cancelled, MessageState.Cancelled), await log.CancelAsync("s", Now, Cancellation));

        var record = await log.GetAsync("s", Cancellation);
        Assert.Equal(MessageState.Cancelled, record!.State);
        Assert.Null(record.SendAt);
        // Its copy on the queue is completed unsent when it comes up, now or at its time.
        Assert.Equal(ClaimStatus.Cancelled, (await ClaimAsync(log, "s", "q-s")).Status);
        // The id stays known: publishing it again queues nothing.
        Assert.Equal(MessageState.Cancelled, (await log.RecordQueuedAsync(["s"], Now, Cancellation))["s"]);
        Assert.Equal(MessageState.Cancelled, (await log.RecordScheduledAsync(["s"], [Now.AddHours(1)], Now, Cancellation))["s"]);
        // Cancelling again says so again.
        Assert.Equal(CancelOutcome.Cancelled, (await log.CancelAsync("s", Now, Cancellation)).Outcome);
    }

    [Fact]
    public async Task Cancel_OfAMessageNotScheduled_OrBeingSent_OrUnknown_IsRefused_SayingWhy()
    {
        var log = await CreateLogAsync();
        await log.RecordQueuedAsync(["queued"], Now, Cancellation);
        await log.RecordQueuedAsync(["sent"], Now, Cancellation);
        await SendAsync(log, "sent", "q-sent");
        await log.RecordScheduledAsync(["due"], [Now.AddSeconds(-1)], Now.AddMinutes(-5), Cancellation);
        await ClaimAsync(log, "due", "q-due");

        Assert.Equal(new CancelResult(CancelOutcome.Unknown, null), await log.CancelAsync("nobody", Now, Cancellation));
        Assert.Equal(new CancelResult(CancelOutcome.NotScheduled, MessageState.Queued), await log.CancelAsync("queued", Now, Cancellation));
        Assert.Equal(new CancelResult(CancelOutcome.NotScheduled, MessageState.Sent), await log.CancelAsync("sent", Now, Cancellation));
        Assert.Equal(new CancelResult(CancelOutcome.BeingSent, MessageState.Scheduled), await log.CancelAsync("due", Now, Cancellation));
        Assert.Equal(MessageState.Scheduled, (await log.GetAsync("due", Cancellation))!.State);
        Assert.Null(await log.GetAsync("nobody", Cancellation));
    }

    protected static async Task RetryAsync(IDeliveryLog log, string id, string holder)
    {
        await ClaimAsync(log, id, holder);
        RecipientStatus[] recipients = [new("someone@example.com", RecipientState.Pending, 451, "451 4.3.0 later")];
        await log.RecordAsync([new DeliveryEntry(id, holder, MessageState.Retrying,
            new DeliveryAttempt(Now, "retry", 451, "451 4.3.0 later", TimeSpan.FromMilliseconds(5)), recipients, 1, "451 4.3.0 later")], Cancellation);
    }

    protected static async Task<Claim> ClaimAsync(IDeliveryLog log, string id, string holder) =>
        Assert.Single(await log.ClaimAsync([new ClaimRequest(id, holder, Now)], Lease, Cancellation));

    protected static async Task SendAsync(IDeliveryLog log, string id, string holder)
    {
        await ClaimAsync(log, id, holder);
        RecipientStatus[] recipients = [new("someone@example.com", RecipientState.Sent, 250, "Ok")];
        await log.RecordAsync([new DeliveryEntry(id, holder, MessageState.Sent,
            new DeliveryAttempt(Now, "sent", 250, "250 Ok", TimeSpan.FromMilliseconds(5)), recipients, 1)], Cancellation);
    }

    protected static async Task DeadAsync(IDeliveryLog log, string id, string body, FailureClass failureClass, string reason, string recipient)
    {
        await ClaimAsync(log, id, "q-" + id);
        RecipientStatus[] recipients = [new(recipient, RecipientState.Failed, 550, reason)];
        await log.RecordAsync([new DeliveryEntry(id, "q-" + id, MessageState.Dead,
            new DeliveryAttempt(Now, "rejected", 550, reason, TimeSpan.Zero), recipients, 1, reason, failureClass, body)], Cancellation);
    }
}
