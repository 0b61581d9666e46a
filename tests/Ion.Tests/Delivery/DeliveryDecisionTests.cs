using Ion.Delivery;
using Ion.Log;
using Ion.Queues;

namespace Ion.Tests.Delivery;

/// <summary>The per-message decision, as a table: history and answers in, queue action and record out.</summary>
public class DeliveryDecisionTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 30, 9, 0, 0, TimeSpan.Zero);
    private static readonly DeliveryPolicy Policy = new(MaxAttempts: 3, RetryBaseDelay: TimeSpan.FromSeconds(30),
        RetryMaxDelay: TimeSpan.FromHours(1), MaxQueueTime: TimeSpan.FromDays(5));
    // Jitter pinned at its top: the delay is exactly base·2^(n−1).
    private static readonly DeliveryDecision Decider = new(Policy, () => 1.0);
    private static readonly QueuedMessage Message = new("m-1", "{\"body\":1}", Start, 1, "q-1", "1:r");

    private static SmtpAnswer Ok => SmtpAnswer.Accepted("2.0.0 Ok: queued");
    private static SmtpAnswer Reply(int code, string text, SmtpStage stage = SmtpStage.RcptTo) => SmtpOutcomes.Classify(code, text, stage);

    private static Decision Decide(DeliveryHistory history, string[] recipients, params (string Address, SmtpAnswer Answer)[] answers) =>
        Decider.Decide(Message, "q-1", history, recipients,
            new DeliveryOutcome(answers.FirstOrDefault(a => a.Answer.Kind != OutcomeKind.Accepted).Answer ?? Ok,
                [.. answers.Select(a => new RecipientAnswer(a.Address, a.Answer))]),
            Start.AddMinutes(1), TimeSpan.FromMilliseconds(20));

    private static DeliveryHistory Fresh => DeliveryHistory.New(Start);

    [Fact]
    public void AllAccepted_Completes_AndRecordsSent()
    {
        var decision = Decide(Fresh, ["a@x.example", "b@y.example"], ("a@x.example", Ok), ("b@y.example", Ok));

        Assert.Equal(QueueAction.Complete, decision.Action);
        Assert.Null(decision.RelayAnswer);
        var entry = decision.Entry!;
        Assert.Equal(MessageState.Sent, entry.State);
        Assert.Equal(1, entry.AttemptsUsed);
        Assert.Equal("sent", entry.Attempt!.Outcome);
        Assert.All(entry.Recipients, r => Assert.Equal(RecipientState.Sent, r.State));
    }

    [Fact]
    public void PermanentRefusal_OfTheOnlyRecipient_DeadLettersAtOnce_WithTheReply()
    {
        var decision = Decide(Fresh, ["nobody@x.example"], ("nobody@x.example", Reply(550, "5.1.1 No such user")));

        Assert.Equal(QueueAction.DeadLetter, decision.Action);
        Assert.Equal("rejected: 550 5.1.1 No such user", decision.Note!.Reason);
        Assert.Equal(FailureClass.Permanent, decision.Note.Class);
        Assert.Equal(1, decision.Note.Attempts);
        Assert.Equal(550, decision.Note.SmtpCode);
        Assert.Equal(MessageState.Dead, decision.Entry!.State);
        Assert.Equal(Message.Body, decision.Entry.Body);
        Assert.Equal("rejected", decision.Entry.Attempt!.Outcome);
    }

    [Theory]
    [InlineData(0, 30)]
    [InlineData(1, 60)]
    public void TransientRefusal_RetriesAfterAGrowingBackoff(int attemptsBefore, int expectedSeconds)
    {
        var history = Fresh with { AttemptsUsed = attemptsBefore };

        var decision = Decide(history, ["a@x.example"], ("a@x.example", Reply(451, "4.7.1 Greylisted, try later")));

        Assert.Equal(QueueAction.Retry, decision.Action);
        Assert.Equal(TimeSpan.FromSeconds(expectedSeconds), decision.Delay);
        Assert.Equal(MessageState.Retrying, decision.Entry!.State);
        Assert.Equal(attemptsBefore + 1, decision.Entry.AttemptsUsed);
        Assert.Equal("451 4.7.1 Greylisted, try later", decision.Entry.Reason);
    }

    [Fact]
    public void TransientRefusal_WithARetryHint_WaitsAsLongAsTheRelayAsked_RecordedAsTheNextAttemptTime()
    {
        var decision = Decide(Fresh, ["a@x.example", "b@y.example"],
            ("a@x.example", Reply(450, "4.2.0 <a@x.example>: Recipient address rejected: Greylisted for 293 seconds")),
            ("b@y.example", Reply(451, "4.7.1 Try again in 2 minutes")));

        Assert.Equal(QueueAction.Retry, decision.Action);
        Assert.Equal(TimeSpan.FromSeconds(293), decision.Delay);
        Assert.Equal(Start.AddMinutes(1) + TimeSpan.FromMilliseconds(20) + TimeSpan.FromSeconds(293), decision.Entry!.NotBefore);
    }

    [Fact]
    public void TransientRefusal_OnTheLastAttempt_DeadLetters_WithTheLastReason()
    {
        var decision = Decide(Fresh with { AttemptsUsed = 2 }, ["a@x.example"], ("a@x.example", Reply(451, "4.7.1 Greylisted, try later")));

        Assert.Equal(QueueAction.DeadLetter, decision.Action);
        Assert.Equal("gave up after 3 attempts: 451 4.7.1 Greylisted, try later", decision.Note!.Reason);
        Assert.Equal(FailureClass.Transient, decision.Note.Class);
        Assert.Equal(3, decision.Note.Attempts);
    }

    [Fact]
    public void OneRefusedOfThree_TheOthersAreSent_TheTransientOneWaits_ThePermanentOneFails()
    {
        string[] recipients = ["a@x.example", "b@y.example", "c@z.example"];

        var decision = Decide(Fresh, recipients,
            ("a@x.example", Ok), ("b@y.example", Reply(550, "5.1.1 No such user")), ("c@z.example", Reply(452, "4.2.2 Mailbox full")));

        Assert.Equal(QueueAction.Retry, decision.Action);
        var entry = decision.Entry!;
        Assert.Equal("partial", entry.Attempt!.Outcome);
        Assert.Equal(
            [("a@x.example", RecipientState.Sent), ("b@y.example", RecipientState.Failed), ("c@z.example", RecipientState.Pending)],
            entry.Recipients.Select(r => (r.Address, r.State)));
        Assert.Equal(3, entry.Attempt.Recipients!.Count);

        // The next attempt goes to c alone; when c takes it, the message is done, and a dead letter for b.
        var history = new DeliveryHistory(entry.AttemptsUsed, Start, entry.Recipients);
        Assert.Equal(["c@z.example"], DeliveryDecision.Pending(recipients, history));
        var last = Decide(history, recipients, ("c@z.example", Ok));

        Assert.Equal(QueueAction.DeadLetter, last.Action);
        Assert.Equal(FailureClass.Permanent, last.Note!.Class);
        Assert.Equal("1 of 3 recipients failed (2 sent): b@y.example: rejected: 550 5.1.1 No such user", last.Note.Reason);
        Assert.Equal(2, last.Entry!.AttemptsUsed);
        Assert.Equal([RecipientState.Sent, RecipientState.Failed, RecipientState.Sent], last.Entry.Recipients.Select(r => r.State));
    }

    [Fact]
    public void TransientRecipient_GivenUp_WhileOthersGotIt_DeadLettersOnlyIt()
    {
        string[] recipients = ["a@x.example", "full@y.example"];
        var history = new DeliveryHistory(2, Start, [new("a@x.example", RecipientState.Sent, 250, "Ok"), new("full@y.example", RecipientState.Pending, 452, "452 4.2.2 Mailbox full")]);

        var decision = Decide(history, recipients, ("full@y.example", Reply(552, "5.2.2 Mailbox full")));

        Assert.Equal(QueueAction.DeadLetter, decision.Action);
        Assert.Equal(FailureClass.Transient, decision.Note!.Class);
        Assert.Equal("1 of 2 recipients failed (1 sent): full@y.example: gave up after 3 attempts: 552 5.2.2 Mailbox full", decision.Note.Reason);
    }

    [Theory]
    [InlineData(OutcomeKind.RelayUnavailable)]
    [InlineData(OutcomeKind.RelayRefusesIon)]
    [InlineData(OutcomeKind.Throttled)]
    public void AnswerAboutTheRelay_Releases_WithoutAnAttempt_OrARecord(OutcomeKind kind)
    {
        var relay = new SmtpAnswer(kind, 454, "4.7.0", "4.7.0 whatever the relay said");

        var decision = Decide(Fresh with { AttemptsUsed = 2 }, ["a@x.example"], ("a@x.example", relay));

        Assert.Equal(QueueAction.Release, decision.Action);
        Assert.Equal(TimeSpan.Zero, decision.Delay);
        Assert.Null(decision.Entry);
        Assert.Same(relay, decision.RelayAnswer);
    }

    [Fact]
    public void Throttled_AfterSomeRecipientsWereAccepted_RecordsThem_AndReleasesTheRest()
    {
        var decision = Decide(Fresh, ["a@x.example", "b@y.example"],
            ("a@x.example", Ok), ("b@y.example", Reply(452, "4.7.0 Too many messages, slow down")));

        Assert.Equal(QueueAction.Release, decision.Action);
        Assert.Equal(OutcomeKind.Throttled, decision.RelayAnswer!.Kind);
        Assert.Equal([RecipientState.Sent, RecipientState.Pending], decision.Entry!.Recipients.Select(r => r.State));
    }

    [Fact]
    public void RelayUnavailable_ForLongerThanTheQueueTime_DeadLetters_AsRelay()
    {
        var history = DeliveryHistory.New(Start.AddDays(-6));

        var decision = Decide(history, ["a@x.example"], ("a@x.example", new SmtpAnswer(OutcomeKind.RelayUnavailable, null, null, "cannot connect: Connection refused")));

        Assert.Equal(QueueAction.DeadLetter, decision.Action);
        Assert.Equal(FailureClass.Relay, decision.Note!.Class);
        Assert.Equal("not delivered within 5.00:00:00: cannot connect: Connection refused", decision.Note.Reason);
    }

    [Fact]
    public void Throttled_ForLongerThanTheQueueTime_DeadLetters_AsThrottled()
    {
        var decision = Decide(DeliveryHistory.New(Start.AddDays(-6)), ["a@x.example"], ("a@x.example", Reply(454, "4.7.0 Throttling failure", SmtpStage.MailFrom)));

        Assert.Equal(FailureClass.Throttled, decision.Note!.Class);
    }

    [Fact]
    public void Invalid_DeadLettersAtOnce_KeepingTheBody()
    {
        var decision = DeliveryDecision.Invalid(Message, "q-1", Fresh, "invalid: subject: is required", Start);

        Assert.Equal(QueueAction.DeadLetter, decision.Action);
        Assert.Equal(FailureClass.Invalid, decision.Note!.Class);
        Assert.Equal("invalid: subject: is required", decision.Entry!.Reason);
        Assert.Equal(Message.Body, decision.Entry.Body);
        Assert.Equal("invalid", decision.Entry.Attempt!.Outcome);
    }

    [Fact]
    public void NotClaimed_AlreadySent_Completes_Dead_JoinsTheDeadLetters_Held_WaitsOutTheClaim()
    {
        var history = Fresh with { LastReason = "rejected: 550", FailureClass = FailureClass.Permanent };

        Assert.Equal(QueueAction.Complete, DeliveryDecision.NotClaimed(new Claim("m-1", ClaimStatus.AlreadySent, history), Start).Action);

        var dead = DeliveryDecision.NotClaimed(new Claim("m-1", ClaimStatus.Dead, history), Start);
        Assert.Equal(QueueAction.DeadLetter, dead.Action);
        Assert.Equal("rejected: 550", dead.Note!.Reason);
        Assert.Null(dead.Entry);

        var held = DeliveryDecision.NotClaimed(new Claim("m-1", ClaimStatus.HeldByOther, history, Start.AddMinutes(7)), Start);
        Assert.Equal(QueueAction.Release, held.Action);
        Assert.Equal(TimeSpan.FromMinutes(7), held.Delay);
    }

    [Fact]
    public void ARetry_RemembersItsTime_AndAMessageThatShowsEarlier_IsHiddenAgainForTheRest()
    {
        var retry = Decide(Fresh, ["a@x.example"], ("a@x.example", Reply(451, "4.3.0 later")));
        var notBefore = retry.Entry!.NotBefore!.Value;
        Assert.Equal(Start.AddMinutes(1) + TimeSpan.FromMilliseconds(20) + TimeSpan.FromSeconds(30), notBefore);

        var history = Fresh with { NotBefore = notBefore };
        var early = DeliveryDecision.TooEarly(history, notBefore - TimeSpan.FromSeconds(10));
        Assert.Equal(QueueAction.Release, early!.Action);
        Assert.Equal(TimeSpan.FromSeconds(10), early.Delay);
        Assert.Null(early.Entry);
        Assert.Null(DeliveryDecision.TooEarly(history, notBefore - TimeSpan.FromMilliseconds(500)));
        Assert.Null(DeliveryDecision.TooEarly(Fresh, Start));
    }

    [Fact]
    public void NotClaimed_Scheduled_IsHiddenUntilItsTime_Uncharged_AndCancelled_Completes()
    {
        var sendAt = Start.AddDays(3);

        var scheduled = DeliveryDecision.NotClaimed(new Claim("m-1", ClaimStatus.Scheduled, Fresh, sendAt), Start);
        var cancelled = DeliveryDecision.NotClaimed(new Claim("m-1", ClaimStatus.Cancelled, Fresh), Start);

        Assert.Equal((QueueAction.Release, TimeSpan.FromDays(3)), (scheduled.Action, scheduled.Delay));
        Assert.Null(scheduled.Entry);
        Assert.Equal(QueueAction.Complete, cancelled.Action);
        Assert.Null(cancelled.Entry);
    }

    [Fact]
    public void ABodysSendAt_TheLogDidNotKnow_HidesItAgainUntilThen_AndTheLaterOfItAndARetrysTimeWins()
    {
        var sendAt = Start.AddHours(2);

        Assert.Equal(TimeSpan.FromHours(2), DeliveryDecision.TooEarly(Fresh, Start, sendAt)!.Delay);
        Assert.Equal(TimeSpan.FromHours(3), DeliveryDecision.TooEarly(Fresh with { NotBefore = Start.AddHours(3) }, Start, sendAt)!.Delay);
        Assert.Equal(TimeSpan.FromHours(2), DeliveryDecision.TooEarly(Fresh with { NotBefore = Start.AddHours(1) }, Start, sendAt)!.Delay);
        Assert.Null(DeliveryDecision.TooEarly(Fresh, sendAt, sendAt));
        Assert.Null(DeliveryDecision.TooEarly(Fresh, Start, Start.AddHours(-1)));
    }

    [Fact]
    public void Pending_LeavesOutWhoIsDone_AndCountsEachAddressOnce()
    {
        var history = new DeliveryHistory(1, Start, [new("a@x.example", RecipientState.Sent), new("b@x.example", RecipientState.Failed), new("c@x.example", RecipientState.Pending)]);

        var pending = DeliveryDecision.Pending(["a@x.example", "b@x.example", "c@x.example", "C@x.example", "d@x.example"], history);

        Assert.Equal(["c@x.example", "d@x.example"], pending);
    }
}
