using Ion.Delivery;
using Ion.Queues;
using Ion.Stores.Aws;
using Microsoft.Extensions.Options;

namespace Ion.Lambda;

/// <summary>
/// One invocation: the SQS event's records go through the same <see cref="BatchDelivery"/> as <c>ion serve</c>'s
/// slots (claim, send, decide, record; delete, retry later with ChangeMessageVisibility, or dead-letter with the
/// reason), and the answer lists the records that must come back (a partial batch response).
/// </summary>
/// <remarks>
/// The SMTP connection belongs to the instance, not to the invocation: a warm instance sends the next batch on it
/// (<see cref="SmtpSender"/> reconnects if it sat idle too long or the relay closed it). The relay circuit belongs to
/// the instance too: while it is open, a batch goes back untouched, each record hidden for
/// <see cref="LambdaOptions.RelayDownDelay"/>, and after the circuit's pause the next invocation probes the relay.
/// </remarks>
public sealed class SqsBatchHandler(
    SqsQueue sqs,
    InvocationQueue queue,
    BatchDelivery delivery,
    RelayCircuit circuit,
    DeadLetterSweeper sweeper,
    IOptions<SmtpOptions> smtpOptions,
    IOptions<LambdaOptions> lambdaOptions,
    TimeProvider time,
    ILogger<SqsBatchHandler> logger) : IAsyncDisposable
{
    private readonly SmtpSender _sender = new(smtpOptions.Value, time);
    private readonly LambdaOptions _options = lambdaOptions.Value;

    public async Task<BatchResponse> HandleAsync(SqsEvent sqsEvent, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sqsEvent);
        var records = sqsEvent.Records;
        List<QueuedMessage> batch = [.. records.Select(r => sqs.FromReceived(r.ToMessage()))];
        queue.Begin();

        // Stop starting messages a margin before the deadline; a send under way finishes (its command timeout bounds it).
        var left = deadline - time.GetUtcNow() - _options.DeadlineMargin;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stop.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.Zero);

        var (permit, pause) = await PermitAsync(cancellationToken);
        if (permit is not null)
        {
            try
            {
                if (!stop.IsCancellationRequested && batch.Count > 0)
                    await delivery.ProcessAsync(_sender, batch, permit, stop.Token);
                else
                    await queue.ReturnAsync(batch, TimeSpan.Zero, CancellationToken.None);
            }
            finally
            {
                circuit.Abandon(permit);
            }
        }
        else
        {
            // Not before the circuit's next probe either: back sooner, they would only be handed back again.
            var delay = queue.HandBackDelay(pause == Timeout.InfiniteTimeSpan ? TimeSpan.Zero : pause);
            Log.RelayDown(logger, batch.Count, delay, circuit.LastAnswer?.Reply);
            await queue.ReturnAsync(batch, delay, CancellationToken.None);
        }

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
            await _sender.DisposeAsync();
        }
        // Settled by the name the batch knows each copy by: SQS's MessageId, or the name ion gave it when it published it.
        var failures = records.Where((_, i) => !queue.Settled(batch[i].QueueMessageId)).Select(r => new BatchItemFailure { ItemIdentifier = r.MessageId }).ToList();
        return new BatchResponse { BatchItemFailures = failures };
    }

    /// <summary>Leave to send, or null and the time until the next probe while the relay is down. A relay that could
    /// not be reached is probed by connecting, as the worker does, so no message is taken for it.</summary>
    private async Task<(RelayPermit? Permit, TimeSpan Pause)> PermitAsync(CancellationToken cancellationToken)
    {
        if (circuit.TryEnter(out var pause) is not { } permit)
            return (null, pause);
        if (!permit.IsTrial || circuit.NeedsAMessageToProbe)
            return (permit, TimeSpan.Zero);
        await delivery.ProbeAsync(_sender, permit, cancellationToken);
        permit = circuit.TryEnter(out pause);
        return (permit, pause);
    }

    public ValueTask DisposeAsync() => _sender.DisposeAsync();
}
