using Ion.Delivery;
using Ion.Queues;
using Ion.Stores.Aws;
using Microsoft.Extensions.Options;

namespace Ion.Lambda;

/// <summary>
/// One invocation: the SQS event's records go through the same <see cref="BatchDelivery"/> as <c>ion serve</c>'s
/// slots (claim, send, decide, record; delete, retry later with ChangeMessageVisibility, or dead-letter with the
/// reason), and the answer lists the records that must come back (a partial batch response). Records of the feedback
/// queue (<c>Ion:Aws:FeedbackQueueUrl</c>, a second event source mapping) are SES's notifications instead: each is taken
/// as <c>ion serve</c>'s reader takes it (<see cref="FeedbackQueue.TakeAsync"/>), and comes back only if the list could
/// not be written.
/// </summary>
/// <remarks>
/// The SMTP connection belongs to the instance, not to the invocation: a warm instance sends the next batch on it
/// (<see cref="SmtpSender"/> reconnects if it sat idle too long or the relay closed it). The relay circuit belongs to
/// the instance too: while it is open, a batch goes through the fallback relay when there is one and it is up
/// (<see cref="Relays"/>); with no relay up, it goes back untouched, each record hidden for
/// <see cref="LambdaOptions.RelayDownDelay"/>, and after the circuit's pause the next invocation probes the relay.
/// </remarks>
public sealed class SqsBatchHandler(
    SqsQueue sqs,
    InvocationQueue queue,
    BatchDelivery delivery,
    Relays relays,
    DeadLetterSweeper sweeper,
    FeedbackQueue feedbackQueue,
    IOptions<SmtpOptions> smtpOptions,
    IOptions<LambdaOptions> lambdaOptions,
    TimeProvider time,
    ILogger<SqsBatchHandler> logger) : IAsyncDisposable
{
    private readonly RelaySenders _senders = new(smtpOptions.Value, time);
    private readonly LambdaOptions _options = lambdaOptions.Value;

    public async Task<BatchResponse> HandleAsync(SqsEvent sqsEvent, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sqsEvent);
        // An event source mapping hands over one queue's records, but each record names its queue: a batch that mixed
        // the two would still have each record handled as its queue's.
        var feedbackRecords = sqsEvent.Records.Where(r => feedbackQueue.IsSourceOf(r.EventSourceArn)).ToList();
        var records = sqsEvent.Records.Where(r => !feedbackQueue.IsSourceOf(r.EventSourceArn)).ToList();
        // A large message's payload is read from S3 here; S3 not answering fails the invocation, and the batch comes back.
        List<QueuedMessage> batch = [.. await sqs.LoadAsync([.. records.Select(r => sqs.FromReceived(r.ToMessage()))], cancellationToken)];
        queue.Begin();

        // Stop starting messages a margin before the deadline; a send under way finishes (its command timeout bounds it).
        var left = deadline - time.GetUtcNow() - _options.DeadlineMargin;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stop.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.Zero);

        // SES's notifications first: a write each, where a batch of mail may take the invocation's time.
        var failures = await TakeFeedbackAsync(feedbackRecords, stop.Token, cancellationToken);
        if (batch.Count > 0)
            await DeliverAsync(batch, stop.Token, cancellationToken);

        // Letters SQS moved to the dead-letter queue by itself (a message that killed the function every time) get
        // their note and their place in the log here, as ion serve's timer does it, while there is time.
        try
        {
            if (!stop.IsCancellationRequested)
                await sweeper.SweepIfDueAsync(stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // Out of time: the next invocation sweeps.
        }

        if (stop.IsCancellationRequested)
        {
            // Out of time: close the session cleanly rather than leave it to be cut when the instance is frozen.
            Log.Deadline(logger, deadline);
            await _senders.DisposeAsync();
        }
        // Settled by the name the batch knows each copy by: SQS's MessageId, or the name ion gave it when it published it.
        failures.AddRange(records.Where((_, i) => !queue.Settled(batch[i].QueueMessageId)).Select(Failure));
        return new BatchResponse { BatchItemFailures = failures };
    }

    /// <summary>ion's messages, through <see cref="BatchDelivery"/> while the relay is up; back for later, untouched,
    /// while it is down.</summary>
    private async Task DeliverAsync(List<QueuedMessage> batch, CancellationToken stop, CancellationToken cancellationToken)
    {
        var (permit, pause) = await PermitAsync(cancellationToken);
        if (permit is not null)
        {
            try
            {
                if (!stop.IsCancellationRequested)
                    await delivery.ProcessAsync(_senders, batch, permit, stop);
                else
                    await queue.ReturnAsync(batch, TimeSpan.Zero, CancellationToken.None);
            }
            finally
            {
                relays[permit.Relay].Abandon(permit);
            }
        }
        else
        {
            // Not before the circuit's next probe either: back sooner, they would only be handed back again.
            var delay = queue.HandBackDelay(pause == Timeout.InfiniteTimeSpan ? TimeSpan.Zero : pause);
            Log.RelayDown(logger, batch.Count, delay, relays.Primary.LastAnswer?.Reply);
            await queue.ReturnAsync(batch, delay, CancellationToken.None);
        }
    }

    /// <summary>The feedback queue's records, each taken as <c>ion serve</c>'s reader takes a message, and the failures
    /// among them: a record whose list write failed, or that the deadline left untouched, comes back after the queue's
    /// visibility timeout, and the list takes it then. A record that is no SES notification is logged and settled,
    /// never returned: it could never become one.</summary>
    private async Task<List<BatchItemFailure>> TakeFeedbackAsync(List<SqsRecord> records, CancellationToken stop, CancellationToken cancellationToken)
    {
        if (records.Count == 0)
            return [];
        if (!feedbackQueue.HasList)
        {
            // Taken, the notifications would have nowhere to go: they wait in the queue for a configuration with a list.
            Log.FeedbackWithoutList(logger, records.Count, feedbackQueue.Url);
            return [.. records.Select(Failure)];
        }
        List<BatchItemFailure> failures = [];
        foreach (var record in records)
        {
            if (stop.IsCancellationRequested)
            {
                failures.Add(Failure(record));
                continue;
            }
            try
            {
                await feedbackQueue.TakeAsync(record.MessageId, record.Body, cancellationToken);
            }
            // The list (or DynamoDB) failing is not a bug, and a bug in one record must not hold up the others.
            catch (Exception error) when (!cancellationToken.IsCancellationRequested)
            {
                Log.FeedbackFailed(logger, record.MessageId, error.GetType().Name, error.Message);
                failures.Add(Failure(record));
            }
        }
        return failures;
    }

    private static BatchItemFailure Failure(SqsRecord record) => new() { ItemIdentifier = record.MessageId };

    /// <summary>Leave to send, or null and the time until the next probe while the relay is down. A relay that could
    /// not be reached is probed by connecting, as the worker does, so no message is taken for it.</summary>
    private async Task<(RelayPermit? Permit, TimeSpan Pause)> PermitAsync(CancellationToken cancellationToken)
    {
        if (relays.TryEnter(out var pause) is not { } permit)
            return (null, pause);
        if (!permit.IsTrial || relays[permit.Relay].NeedsAMessageToProbe)
            return (permit, TimeSpan.Zero);
        await delivery.ProbeAsync(_senders, permit, cancellationToken);
        // Whatever the probe found, the batch may still go: through the relay that answered, or the other one.
        permit = relays.TryEnter(out pause);
        if (permit is { IsTrial: true } && !relays[permit.Relay].NeedsAMessageToProbe)
        {
            // The other relay's probe was due as well (the primary's failed, and the fallback is down too).
            await delivery.ProbeAsync(_senders, permit, cancellationToken);
            permit = relays.TryEnter(out pause);
        }
        return (permit, pause);
    }

    public ValueTask DisposeAsync() => _senders.DisposeAsync();
}
