using System.Globalization;
using Ion.Log;
using Ion.Queues;

namespace Ion.Delivery;

public enum QueueAction
{
    /// <summary>Done with it (sent, or another copy was): delete it from the queue.</summary>
    Complete,
    /// <summary>An attempt failed and counted: visible again after the backoff.</summary>
    Retry,
    /// <summary>Not tried, or not its fault (the relay): visible again after the delay, no attempt counted.</summary>
    Release,
    /// <summary>Failed for good: to the dead letters, with why.</summary>
    DeadLetter,
    /// <summary>Not ours any more (its hold ran out and another receiver has it): leave it, and its claim, alone.</summary>
    LetGo,
}

/// <summary>
/// What to do with one message after handling it: the queue action (with its delay or dead-letter note), what to
/// record in the delivery log (null: only give the claim back), and the answer about the relay itself, if the relay
/// answered for itself rather than for the message (throttled, refuses ion, unavailable), and which relay answered
/// (null: none was asked).
/// </summary>
public sealed record Decision(
    QueueAction Action,
    TimeSpan Delay = default,
    DeliveryEntry? Entry = null,
    DeadLetterNote? Note = null,
    SmtpAnswer? RelayAnswer = null,
    IReadOnlyList<RecipientAnswer>? Refused = null,
    Relay? Relay = null);

/// <summary>
/// The per-message decision, pure: given the message, what the log knows of it and what the relay answered, it says
/// complete, retry after a delay, release, or dead-letter, and what to record. The worker applies it to the queue; a
/// Lambda handler maps the same decisions to a partial batch response.
/// </summary>
public sealed class DeliveryDecision(DeliveryPolicy policy, Func<double> random)
{
    /// <summary>The recipients still waiting for the message: those the log has neither sent nor failed. Each once,
    /// as the relay would count them (case-insensitively).</summary>
    public static IReadOnlyList<string> Pending(IReadOnlyList<string> recipients, DeliveryHistory history)
    {
        ArgumentNullException.ThrowIfNull(recipients);
        ArgumentNullException.ThrowIfNull(history);
        var done = history.Recipients.Where(r => r.State != RecipientState.Pending)
            .Select(r => r.Address).ToHashSet(StringComparer.OrdinalIgnoreCase);
        return [.. recipients.Distinct(StringComparer.OrdinalIgnoreCase).Where(r => !done.Contains(r))];
    }

    /// <summary>The message is not valid: a dead letter at once, never retried.</summary>
    public static Decision Invalid(QueuedMessage message, string holder, DeliveryHistory history, string reason, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(history);
        var attempt = new DeliveryAttempt(now, "invalid", null, reason, TimeSpan.Zero);
        var entry = new DeliveryEntry(message.Id, holder, MessageState.Dead, attempt, history.Recipients, history.AttemptsUsed,
            reason, FailureClass.Invalid, message.StoredBody);
        return new Decision(QueueAction.DeadLetter, Entry: entry, Note: new DeadLetterNote(reason, FailureClass.Invalid, history.AttemptsUsed, null));
    }

    /// <summary>A claimed message that showed before its retry's time (a queue cannot hide a message for as long as
    /// any delay: SQS stops at 12 hours), or before its own <paramref name="sendAt"/> (a message the log did not know as
    /// scheduled: published straight onto the queue): hidden again for the rest, without an attempt. Null when it is
    /// due.</summary>
    public static Decision? TooEarly(DeliveryHistory history, DateTimeOffset now, DateTimeOffset? sendAt = null)
    {
        ArgumentNullException.ThrowIfNull(history);
        var notBefore = sendAt > history.NotBefore || history.NotBefore is null ? sendAt : history.NotBefore;
        return notBefore is { } time && time - now > DeliveryHistory.Grace
            ? new Decision(QueueAction.Release, time - now)
            : null;
    }

    /// <summary>What a claim that was not granted means for this copy of the message.</summary>
    public static Decision NotClaimed(Claim claim, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(claim);
        return claim.Status switch
        {
            // Cancelled: the log says so already, and nothing is to be sent.
            ClaimStatus.AlreadySent or ClaimStatus.Cancelled => new Decision(QueueAction.Complete),
            // A copy of a dead letter joins it there rather than disappearing: nothing is ever dropped unseen.
            ClaimStatus.Dead => new Decision(QueueAction.DeadLetter, Note: new DeadLetterNote(
                claim.History.LastReason ?? "dead letter", claim.History.FailureClass ?? FailureClass.Permanent, claim.History.AttemptsUsed, null)),
            // Scheduled: hidden until its time, uncharged (a queue that cannot hide it that long shows it again sooner, and
            // it is hidden again for the rest).
            ClaimStatus.HeldByOther or ClaimStatus.Scheduled =>
                new Decision(QueueAction.Release, Delay: claim.HeldUntil is { } until && until > now ? until - now : TimeSpan.Zero),
            _ => throw new ArgumentOutOfRangeException(nameof(claim), claim.Status, "a granted claim needs no decision of its own"),
        };
    }

    /// <summary>Decides after a send to the recipients <see cref="Pending"/> gave.</summary>
    /// <param name="message">The queue copy that was sent.</param>
    /// <param name="holder">The claim to end (the copy's queue message id).</param>
    /// <param name="history">What the log knew before this attempt.</param>
    /// <param name="recipients">Every recipient of the message.</param>
    /// <param name="outcome">The relay's answers, one per recipient that was sent to.</param>
    /// <param name="startedAt">When the attempt started.</param>
    /// <param name="duration">How long it took.</param>
    public Decision Decide(
        QueuedMessage message,
        string holder,
        DeliveryHistory history,
        IReadOnlyList<string> recipients,
        DeliveryOutcome outcome,
        DateTimeOffset startedAt,
        TimeSpan duration)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(history);
        ArgumentNullException.ThrowIfNull(recipients);
        ArgumentNullException.ThrowIfNull(outcome);

        // Every recipient, in the message's order, with what the log knew; then this attempt's answers on top.
        var known = history.Recipients.ToDictionary(r => r.Address, StringComparer.OrdinalIgnoreCase);
        var statuses = recipients.Distinct(StringComparer.OrdinalIgnoreCase)
            .Select(r => known.GetValueOrDefault(r) ?? new RecipientStatus(r, RecipientState.Pending))
            .ToList();
        var answers = outcome.Recipients.ToDictionary(a => a.Address, a => a.Answer, StringComparer.OrdinalIgnoreCase);

        var charged = false;
        var accepted = 0;
        var refused = 0;
        var suppressed = 0;
        SmtpAnswer? relay = null;
        for (var i = 0; i < statuses.Count; i++)
        {
            if (statuses[i].State != RecipientState.Pending || !answers.TryGetValue(statuses[i].Address, out var answer))
                continue;
            switch (answer.Kind)
            {
                case OutcomeKind.Accepted:
                    statuses[i] = statuses[i] with { State = RecipientState.Sent, SmtpCode = answer.Code, Reply = answer.Text };
                    accepted++;
                    break;
                case OutcomeKind.Permanent:
                    statuses[i] = statuses[i] with { State = RecipientState.Failed, SmtpCode = answer.Code, Reply = $"rejected: {answer.Reply}" };
                    refused++;
                    break;
                case OutcomeKind.Transient:
                    statuses[i] = statuses[i] with { SmtpCode = answer.Code, Reply = answer.Reply };
                    charged = true;
                    break;
                case OutcomeKind.Suppressed:
                    statuses[i] = statuses[i] with { State = RecipientState.Suppressed, SmtpCode = null, Reply = answer.Text };
                    suppressed++;
                    break;
                default:
                    // About the relay, not this recipient: it waits, uncharged, with nothing new to say about it.
                    relay = Worse(relay, answer);
                    break;
            }
        }

        // The relay judged the message (or a recipient): that is an attempt, recorded and counted. Answers about the
        // relay itself are neither.
        var judged = accepted + refused > 0 || charged;
        var attemptsUsed = history.AttemptsUsed + (judged ? 1 : 0);
        var attempt = judged
            ? new DeliveryAttempt(startedAt, AttemptName(accepted, refused, charged), outcome.Summary.Code, outcome.Summary.Reply, duration,
                statuses.Count > 1 ? [.. statuses.Where(s => answers.ContainsKey(s.Address))] : null)
            // Nobody was asked: every recipient left was suppressed. Said in the attempts all the same.
            : suppressed > 0
                ? new DeliveryAttempt(startedAt, "suppressed", null, outcome.Summary.Text, TimeSpan.Zero,
                    statuses.Count > 1 ? [.. statuses.Where(s => answers.ContainsKey(s.Address))] : null)
                : null;

        if (statuses.All(s => s.State != RecipientState.Pending))
            return Finish(message, holder, statuses, attempt, attemptsUsed, FailureClass.Permanent, gaveUp: null, relay);

        if (charged && attemptsUsed >= policy.MaxAttempts)
            return Finish(message, holder, statuses, attempt, attemptsUsed, FailureClass.Transient,
                gaveUp: string.Create(CultureInfo.InvariantCulture, $"gave up after {attemptsUsed} attempts"), relay);

        if (startedAt - history.QueuedAt >= policy.MaxQueueTime)
        {
            var failureClass = relay?.Kind == OutcomeKind.Throttled ? FailureClass.Throttled : relay is null ? FailureClass.Transient : FailureClass.Relay;
            if (relay is not null)
                statuses = [.. statuses.Select(s => s.State == RecipientState.Pending ? s with { SmtpCode = relay.Code, Reply = relay.Reply } : s)];
            return Finish(message, holder, statuses, attempt, attemptsUsed, failureClass,
                gaveUp: $"not delivered within {policy.MaxQueueTime}", relay);
        }

        if (charged)
        {
            var delay = RetrySchedule.Delay(attemptsUsed, policy.RetryBaseDelay, policy.RetryMaxDelay, random(),
                statuses.Where(s => s.State == RecipientState.Pending && answers.ContainsKey(s.Address)).Select(s => s.Reply));
            var lastReply = statuses.First(s => s.State == RecipientState.Pending && s.Reply is not null).Reply;
            var entry = new DeliveryEntry(message.Id, holder, MessageState.Retrying, attempt, statuses, attemptsUsed, lastReply,
                NotBefore: startedAt + duration + delay);
            return new Decision(QueueAction.Retry, delay, entry, RelayAnswer: relay);
        }

        // Only the relay stood in the way: no attempt counted. What did reach a recipient is recorded all the same,
        // so it is never sent to them again.
        var progress = attempt is null ? null
            : new DeliveryEntry(message.Id, holder, MessageState.Retrying, attempt, statuses, attemptsUsed, relay?.Reply);
        return new Decision(QueueAction.Release, TimeSpan.Zero, progress, RelayAnswer: relay);
    }

    /// <summary>No recipient is waiting any more: sent when all got it, otherwise a dead letter saying who did not
    /// and why. <paramref name="gaveUp"/> names why the still-waiting ones are given up (null: none were waiting).</summary>
    private static Decision Finish(
        QueuedMessage message,
        string holder,
        List<RecipientStatus> statuses,
        DeliveryAttempt? attempt,
        int attemptsUsed,
        FailureClass failureClass,
        string? gaveUp,
        SmtpAnswer? relay)
    {
        if (gaveUp is not null)
            statuses = [.. statuses.Select(s => s.State == RecipientState.Pending ? s with { State = RecipientState.Failed, Reply = $"{gaveUp}: {s.Reply}" } : s)];

        // Suppressed recipients were left out on purpose: they neither fail a message nor make it sent.
        if (statuses.All(s => s.State is RecipientState.Sent or RecipientState.Suppressed))
        {
            var state = statuses.Exists(s => s.State == RecipientState.Sent) ? MessageState.Sent : MessageState.Suppressed;
            var why = state == MessageState.Suppressed ? statuses[0].Reply : null;
            return new Decision(QueueAction.Complete, Entry: new DeliveryEntry(message.Id, holder, state, attempt, statuses, attemptsUsed, why), RelayAnswer: relay);
        }

        var failed = statuses.Where(s => s.State == RecipientState.Failed).ToList();
        var left = statuses.Count(s => s.State == RecipientState.Suppressed);
        var reason = failed.Count == statuses.Count && failed.Select(f => f.Reply).Distinct().Count() == 1
            ? failed[0].Reply!
            : string.Create(CultureInfo.InvariantCulture,
                $"{failed.Count} of {statuses.Count} recipients failed ({statuses.Count - failed.Count - left} sent{(left > 0 ? $", {left} suppressed" : "")}): {string.Join("; ", failed.Select(f => $"{f.Address}: {f.Reply}"))}");
        var entry = new DeliveryEntry(message.Id, holder, MessageState.Dead, attempt, statuses, attemptsUsed, reason, failureClass, message.StoredBody);
        var code = failed.Select(f => f.SmtpCode).FirstOrDefault(c => c is not null);
        return new Decision(QueueAction.DeadLetter, Entry: entry, Note: new DeadLetterNote(reason, failureClass, attemptsUsed, code), RelayAnswer: relay);
    }

    private static string AttemptName(int accepted, int refused, bool waiting) => (accepted, refused, waiting) switch
    {
        ( > 0, 0, false) => "sent",
        ( > 0, _, _) => "partial",
        (0, _, true) => "retry",
        _ => "rejected",
    };

    // One answer stands for the relay in health and in the circuit: a relay that cannot be reached outranks one that
    // refuses ion, which outranks one that only asks to slow down.
    private static SmtpAnswer Worse(SmtpAnswer? current, SmtpAnswer next) =>
        current is null || Rank(next.Kind) > Rank(current.Kind) ? next : current;

    private static int Rank(OutcomeKind kind) => kind switch
    {
        OutcomeKind.RelayUnavailable => 3,
        OutcomeKind.RelayRefusesIon => 2,
        OutcomeKind.Throttled => 1,
        _ => 0,
    };
}

/// <summary>The limits the decision applies: attempts, their backoff, and how long a message may wait in all.</summary>
public sealed record DeliveryPolicy(int MaxAttempts, TimeSpan RetryBaseDelay, TimeSpan RetryMaxDelay, TimeSpan MaxQueueTime)
{
    public static DeliveryPolicy From(DeliveryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new(options.MaxAttempts, options.RetryBaseDelay, options.RetryMaxDelay, options.MaxQueueTime);
    }
}
