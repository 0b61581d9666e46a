using Ion.Events;
using Ion.Log;
using Ion.Messages;
using Ion.Queues;
using Ion.Suppression;
using Microsoft.Extensions.Options;

namespace Ion.Delivery;

/// <summary>
/// Delivers a batch received from the queue: claim, send, decide, record, then complete / retry later / release /
/// dead-letter each message. What <c>ion serve</c>'s slots (<see cref="DeliveryWorker"/>) and the Lambda do with a
/// batch, whoever received it.
/// </summary>
/// <remarks>
/// Each message's outcome is recorded in the delivery log before the relay has the whole of the next message on the
/// same connection (the next transaction goes meanwhile, its end of data waits: <see cref="WaitingBody"/>), so a crash
/// repeats at most the message that was in the middle of its SMTP transaction on each connection. Deleting the completed messages from the queue waits for the end of the batch: a message whose
/// deletion a crash prevented comes back, finds itself sent in the log, and is deleted then.
/// </remarks>
public sealed class BatchDelivery(
    IMessageQueue queue,
    IDeliveryLog log,
    Redriver redriver,
    Relays relays,
    SendRate rate,
    RefusalStreak streak,
    HeldMessages held,
    DeliveryDecision decider,
    Suppressions suppressions,
    DeliveryEvents events,
    IonMetrics metrics,
    IOptions<IonOptions> ionOptions,
    IOptions<DeliveryOptions> deliveryOptions,
    TimeProvider time,
    ILogger<BatchDelivery> logger)
{
    // A claim only keeps another copy of the same id (SQS may hold several) from being sent meanwhile; the copy
    // being delivered can always claim again. An hour outlasts any batch (batches are kept short at low rates).
    private static readonly TimeSpan ClaimLease = TimeSpan.FromHours(1);
    // At a low rate a batch is sized to about this much sending, so messages are not held for long unsent.
    private static readonly TimeSpan BatchSpan = TimeSpan.FromSeconds(10);

    private readonly DeliveryOptions _options = deliveryOptions.Value;
    private readonly MessageRules _rules = ionOptions.Value.ToMessageRules();

    /// <summary>A relay that could not be reached is tried by connecting (TLS, EHLO, AUTH), without taking a message
    /// off the queue: an outage then costs no receives, which SQS's redrive policy would count. The permit's relay is
    /// the one tried.</summary>
    public async Task ProbeAsync(RelaySenders senders, RelayPermit permit, CancellationToken stoppingToken)
    {
        ArgumentNullException.ThrowIfNull(senders);
        ArgumentNullException.ThrowIfNull(permit);
        var circuit = relays[permit.Relay];
        if (await senders[permit.Relay].ConnectAsync(stoppingToken) is { } failure)
        {
            circuit.Failed(permit, failure);
            return;
        }
        Log.RelayBack(logger, Relays.Name(permit.Relay));
        circuit.Succeeded(permit);
    }

    /// <summary>Messages to take at once: <see cref="DeliveryOptions.BatchSize"/>, or fewer at a rate at which a batch
    /// would take long to send.</summary>
    public int BatchSize()
    {
        var size = Math.Min(_options.BatchSize, IMessageQueue.MaxReceive);
        if (rate.CurrentPerSecond is { } perSecond)
            size = (int)Math.Clamp(Math.Floor(perSecond * BatchSpan.TotalSeconds), 1, size);
        return size;
    }

    /// <summary>Delivers <paramref name="batch"/> under <paramref name="permit"/>. What it does not get to (stopped, the
    /// circuit opened) goes back to the queue at once.</summary>
    /// <remarks>A message's outcome is recorded while the next message's transaction starts: that message waits for the
    /// record before the end of its data goes to the relay (<see cref="WaitingBody"/>), so the relay never has two messages
    /// whose outcomes are not recorded, and a send's round trips no longer wait for the commit before them.</remarks>
    public async Task ProcessAsync(RelaySenders senders, IReadOnlyList<QueuedMessage> batch, RelayPermit permit, CancellationToken stoppingToken)
    {
        ArgumentNullException.ThrowIfNull(permit);
        var circuit = relays[permit.Relay];
        held.Add(batch);
        List<QueuedMessage> completed = [];
        // Messages whose outcome is applied; the one after them may still be being applied (recording).
        var handled = 0;
        Task? recording = null;
        IReadOnlyList<Claim>? claims = null;
        try
        {
            claims = await log.ClaimAsync([.. batch.Select(Request)], ClaimLease, CancellationToken.None);
            for (var next = 0; next < batch.Count; next++)
            {
                // The first message goes whatever happened meanwhile: a trial must try, and a slot that got its permit
                // just now may. After that, a circuit another slot opened sends the rest back.
                if (stoppingToken.IsCancellationRequested || (next > 0 && !circuit.Allows(permit)))
                    break;
                var decision = await HandleAsync(senders, batch[next], claims[next], permit, recording ?? Task.CompletedTask, stoppingToken);
                if (recording is not null)
                {
                    await recording;
                    recording = null;
                    handled++;
                }
                if (decision is null)
                    break;
                var (message, claimed) = (batch[next], claims[next].Status == ClaimStatus.Claimed);
                // On its own thread: SQLite commits on the caller's, which is the send's.
                recording = Task.Run(() => ApplyAsync(message, claimed, decision, completed), CancellationToken.None);
            }
            if (recording is not null)
            {
                await recording;
                recording = null;
                handled++;
            }
        }
        finally
        {
            // A send that failed (the outcome before it could not be recorded, say) left that record behind: the rest
            // is known once it ends. What it failed with is already on its way up, or is the reason for it.
            if (recording is not null)
            {
                try
                {
                    await recording;
                    handled++;
                }
#pragma warning disable CA1031 // the try block's own exception is on its way up; this one is the same or its cause
                catch (Exception)
                {
                }
#pragma warning restore CA1031
            }
            // Whatever this slot did not get to goes back at once (shutdown, circuit open), not after the timeout.
            var rest = batch.Skip(handled).ToList();
            if (rest.Count > 0)
                await GiveBackAsync(rest, claims is null ? [] : [.. claims.Skip(handled).Zip(rest).Where(c => c.First.Status == ClaimStatus.Claimed).Select(c => Request(c.Second))]);
            if (completed.Count > 0)
            {
                await Bookkeeping.TryAsync(() => queue.CompleteAsync(completed, CancellationToken.None), "complete", logger);
                await held.RemoveAsync(completed);
            }
        }
    }

    private static ClaimRequest Request(QueuedMessage message) => new(message.Id, message.QueueMessageId, message.EnqueuedAt);

    private async Task GiveBackAsync(List<QueuedMessage> messages, List<ClaimRequest> claims)
    {
        if (claims.Count > 0)
            await Bookkeeping.TryAsync(() => log.ReleaseAsync(claims, CancellationToken.None), "release claims", logger);
        await held.RemoveAsync(messages);
        await Bookkeeping.TryAsync(() => queue.ReturnAsync(messages, TimeSpan.Zero, CancellationToken.None), "release", logger);
    }

    /// <summary>One message, start to finish, as a decision. Null when it was given up untried (shutdown while waiting
    /// for the rate limit). Everything the message may cause is a decision, so a bad message cannot stop the slot or
    /// block the messages behind it.</summary>
    private async Task<Decision?> HandleAsync(RelaySenders senders, QueuedMessage message, Claim claim, RelayPermit permit, Task recorded, CancellationToken stoppingToken)
    {
        IReadOnlyList<string> tags = [];
        try
        {
            // A body the store could not read (its payload gone from S3) is a message that cannot be sent.
            ParsedMessage parsed = message.Offloaded?.Error is { } unreadable ? new InvalidMessage(null, unreadable) : MessageParser.Parse(message.Body, _rules);
            if (parsed is SendRequest { Email.Tags: var given })
                tags = given;
            return events.Attach(await DecideAsync(senders, message, claim, parsed, permit, recorded, stoppingToken), message.Id, claim.History, tags);
        }
        catch (Exception error) when (error is not OperationCanceledException and not StoreUnavailableException)
        {
            // A bug met by this message: count it as a failed attempt, so the message ends in the dead letters after
            // MaxAttempts instead of coming back forever.
            Log.Unexpected(logger, message.Id, error);
            var answer = new SmtpAnswer(OutcomeKind.Transient, null, null, $"internal error: {error.GetType().Name}: {error.Message}");
            var recipients = claim.History.Recipients.Count > 0 ? claim.History.Recipients.Select(r => r.Address).ToList() : ["(unknown)"];
            return events.Attach(decider.Decide(message, message.QueueMessageId, claim.History, recipients,
                DeliveryOutcome.ForAll(answer, DeliveryDecision.Pending(recipients, claim.History)), time.GetUtcNow(), TimeSpan.Zero), message.Id, claim.History, tags);
        }
    }

    /// <summary>What the parsed message comes to.</summary>
    private async Task<Decision?> DecideAsync(RelaySenders senders, QueuedMessage message, Claim claim, ParsedMessage parsed, RelayPermit permit, Task recorded, CancellationToken stoppingToken)
    {
        switch (parsed)
        {
            // A copy of a message delivered already is done, readable or not (a duplicate copy whose payload the first
            // copy's delivery deleted).
            case InvalidMessage when claim.Status == ClaimStatus.AlreadySent:
                return DeliveryDecision.NotClaimed(claim, time.GetUtcNow());
            case InvalidMessage invalid:
                Log.Invalid(logger, message.Id, invalid.Reason);
                return DeliveryDecision.Invalid(message, message.QueueMessageId, claim.History, invalid.Reason, time.GetUtcNow());
            case RedriveRequest redrive:
                var moved = await redriver.RedriveAsync(redrive.Ids, CancellationToken.None);
                Log.Redriven(logger, moved.Count);
                return new Decision(QueueAction.Complete, Entry: new DeliveryEntry(message.Id, message.QueueMessageId, MessageState.Sent,
                    new DeliveryAttempt(time.GetUtcNow(), "redrive", null, $"moved {moved.Count} dead letter(s) back to the queue", TimeSpan.Zero), [], 0));
            case SendRequest when claim.Status != ClaimStatus.Claimed:
                Log.NotClaimed(logger, message.Id, claim.Status);
                return DeliveryDecision.NotClaimed(claim, time.GetUtcNow());
            case SendRequest send when DeliveryDecision.TooEarly(claim.History, time.GetUtcNow(), send.Email.SendAt) is { } early:
                return early;
            case SendRequest send:
                return await SendAsync(senders, message, claim.History, send.Email, permit, recorded, stoppingToken);
            default:
                throw new InvalidOperationException("the parser returned something new");
        }
    }

    private async Task<Decision?> SendAsync(RelaySenders senders, QueuedMessage message, DeliveryHistory history, EmailMessage email, RelayPermit permit, Task recorded, CancellationToken stoppingToken)
    {
        List<string> recipients = [.. email.To, .. email.Cc, .. email.Bcc];
        // A throttled message stays with this slot and goes again when the slowed rate allows: given back, it would
        // only come round again at once, and on SQS every receive counts towards the redrive policy's maxReceiveCount.
        while (true)
        {
            var pending = DeliveryDecision.Pending(recipients, history);
            var startedAt = time.GetUtcNow();
            if (pending.Count == 0)
                return decider.Decide(message, message.QueueMessageId, history, recipients, new DeliveryOutcome(SmtpAnswer.Accepted("nothing left to send"), []), startedAt, TimeSpan.Zero);

            // Suppressed recipients are left out (each says why); with nobody left, nothing goes to the relay.
            var found = await suppressions.FindAsync(email, pending, CancellationToken.None);
            List<RecipientAnswer> left = [.. pending.Where(found.ContainsKey).Select(r => new RecipientAnswer(r, Suppressed(found[r])))];
            if (left.Count > 0)
            {
                metrics.RecipientsSuppressed(left.Count);
                Log.Suppressed(logger, message.Id, left.Count, Recipients([.. left.Select(a => a.Address)]));
                pending = [.. pending.Where(r => !found.ContainsKey(r))];
                if (pending.Count == 0)
                    return decider.Decide(message, message.QueueMessageId, history, recipients, new DeliveryOutcome(left[0].Answer, left), startedAt, TimeSpan.Zero);
            }

            try
            {
                await rate.WaitAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return null;
            }

            // Last look before the relay: if the store could not be told to keep this message hidden for a while,
            // another receiver may have it by now.
            if (!await held.ConfirmAsync(message))
            {
                Log.LetGo(logger, message.Id);
                return new Decision(QueueAction.LetGo);
            }

            // The batch's relay, or the other one where it should take this message instead (deferred often enough, or
            // the primary back or gone down since the batch was taken): decided afresh for each try (Relays.Divert).
            var through = relays.Divert(permit, history) ?? permit;
            startedAt = time.GetUtcNow();
            var started = time.GetTimestamp();
            var mime = MimeBuilder.Build(email, message.Id, _rules, startedAt);
            // The send is not cancelled at shutdown: stopping mid-DATA would make a duplicate likely. The command
            // timeout bounds it.
            var outcome = await senders[through.Relay].SendAsync(mime, email.From ?? _rules.DefaultSender, pending, recorded, CancellationToken.None);
            var elapsed = time.GetElapsedTime(started);
            metrics.SendTook(elapsed, through.Relay);
            metrics.RecipientsRefused(outcome.Recipients.Count(r => r.Answer.Kind == OutcomeKind.Permanent));

            var (reviewed, redrive) = streak.Review(message.Id, outcome);
            if (left.Count > 0)
                reviewed = reviewed with { Recipients = [.. reviewed.Recipients, .. left] };
            if (redrive.Count > 0)
            {
                // Their refusals were the relay's, not their recipients': what they put on the suppression list comes off
                // (after this slot's previous record, which may be one of them, has landed).
                await Bookkeeping.TryAsync(async () =>
                {
                    await recorded;
                    await suppressions.ForgetRefusalsAsync(redrive, CancellationToken.None);
                }, "unsuppress", logger);
                // Messages the streak dead-lettered before it was recognised go back to wait with the rest.
                var moved = await redriver.RedriveAsync(redrive, CancellationToken.None);
                Log.StreakRedriven(logger, moved.Count);
            }
            // The recipients refused for good go on the suppression list once the outcome is recorded.
            var decision = Through(decider.Decide(message, message.QueueMessageId, history, recipients, reviewed, startedAt, elapsed), through.Relay) with
            {
                Refused = [.. reviewed.Recipients.Where(a => a.Answer.Kind == OutcomeKind.Permanent)],
            };
            Signal(through, decision.RelayAnswer);
            Log.Decided(logger, message.Id, decision.Action, decision.Entry?.AttemptsUsed ?? history.AttemptsUsed, elapsed.TotalMilliseconds,
                Recipients(pending), reviewed.Summary.Code, reviewed.Summary.Reply);
            if (decision is not { Action: QueueAction.Release, RelayAnswer.Kind: OutcomeKind.Throttled } || stoppingToken.IsCancellationRequested)
                return decision;

            // What reached someone is recorded before trying the rest again; recording ends the claim, so it is taken
            // again (by the same copy, which always may).
            if (decision.Entry is { } progress)
            {
                await Bookkeeping.UntilDoneAsync(() => log.RecordAsync([progress], CancellationToken.None), "record", logger, time);
                await Bookkeeping.UntilDoneAsync(() => log.ClaimAsync([Request(message)], ClaimLease, CancellationToken.None), "claim", logger, time);
                history = history with { Recipients = progress.Recipients, AttemptsUsed = progress.AttemptsUsed };
            }
        }
    }

    /// <summary>The decision, saying which relay took its attempt (in the log and the events too).</summary>
    private static Decision Through(Decision decision, Relay relay) => decision with
    {
        Relay = relay,
        Entry = decision.Entry is { Attempt: { } attempt } entry ? entry with { Attempt = attempt with { Relay = Relays.Name(relay) } } : decision.Entry,
    };

    private static SmtpAnswer Suppressed(SuppressedAddress entry) => new(OutcomeKind.Suppressed, null, null,
        string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"suppressed ({entry.Reason.ToString().ToLowerInvariant()} since {entry.At:yyyy-MM-dd HH:mm:ss}Z): {entry.Detail}"));

    /// <summary>For the log: the recipients' domains, or their addresses where a setting allows it.</summary>
    private string Recipients(IReadOnlyList<string> recipients) => string.Join(", ", _options.LogRecipientAddresses
        ? recipients
        : recipients.Select(r => r[(r.LastIndexOf('@') + 1)..]).Distinct(StringComparer.OrdinalIgnoreCase));

    /// <summary>Tells the circuit of the relay that answered, and the rate, what its answers said about the relay itself.</summary>
    private void Signal(RelayPermit permit, SmtpAnswer? relay)
    {
        var circuit = relays[permit.Relay];
        switch (relay?.Kind)
        {
            case OutcomeKind.RelayUnavailable or OutcomeKind.RelayRefusesIon:
                if (circuit.Allows(permit) && !circuit.IsOpen)
                    Log.RelayDown(logger, Relays.Name(permit.Relay), relay.Reply);
                circuit.Failed(permit, relay);
                break;
            case OutcomeKind.Throttled:
                rate.OnThrottled();
                Log.Throttled(logger, relay.Reply, rate.CurrentPerSecond);
                circuit.Succeeded(permit);
                break;
            default:
                if (permit.IsTrial && circuit.IsOpen)
                    Log.RelayBack(logger, Relays.Name(permit.Relay));
                rate.OnSent();
                circuit.Succeeded(permit);
                break;
        }
    }

    /// <summary>Records the decision, then applies it to the queue. The record is retried until it lands: after a
    /// relay's 250 a lost record would mean sending again. The message stays held (hidden) meanwhile.</summary>
    private async Task ApplyAsync(QueuedMessage message, bool claimed, Decision decision, List<QueuedMessage> completed)
    {
        if (decision.Action == QueueAction.LetGo)
        {
            await held.RemoveAsync([message]);
            return;
        }
        if (decision.Entry is { } entry)
        {
            await Bookkeeping.UntilDoneAsync(() => log.RecordAsync([entry], CancellationToken.None), "record", logger, time);
            if (decision.Refused is { Count: > 0 } refused)
                await Bookkeeping.TryAsync(() => suppressions.NoteRefusalsAsync(message.Id, refused, CancellationToken.None), "suppress", logger);
        }
        else if (claimed)
            await Bookkeeping.TryAsync(() => log.ReleaseAsync([Request(message)], CancellationToken.None), "release claim", logger);

        switch (decision.Action)
        {
            case QueueAction.Complete:
                // Deleted at the end of the batch, together; the log already says why.
                if (decision.Entry is { State: MessageState.Sent, Attempt.SmtpCode: not null })
                    metrics.Sent(time.GetUtcNow() - message.EnqueuedAt, decision.Relay ?? Relay.Primary);
                completed.Add(message);
                return;
            case QueueAction.Retry or QueueAction.Release:
                if (decision.Action == QueueAction.Retry)
                    metrics.Retried(decision.Relay ?? Relay.Primary);
                await held.RemoveAsync([message]);
                await Bookkeeping.TryAsync(() => queue.ReturnAsync([message], decision.Delay, CancellationToken.None), "return", logger);
                return;
            case QueueAction.DeadLetter:
                await held.RemoveAsync([message]);
                await Bookkeeping.TryAsync(() => queue.DeadLetterAsync(message, decision.Note!, CancellationToken.None), "dead-letter", logger);
                Log.DeadLettered(logger, message.Id, decision.Note!.Attempts, decision.Note.Reason);
                metrics.DeadLettered(decision.Note.Class);
                return;
        }
    }
}
