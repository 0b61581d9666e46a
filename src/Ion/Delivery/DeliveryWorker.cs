using System.Threading.RateLimiting;
using Ion.Log;
using Ion.Messages;
using Ion.Queues;
using Microsoft.Extensions.Options;

namespace Ion.Delivery;

/// <summary>
/// Takes messages off the queue and delivers them: receive, send, then complete / retry later / dead-letter, and
/// record. One loop per SMTP connection (<see cref="DeliveryOptions.Concurrency"/>), one probe loop for a relay
/// that is down, one loop that prunes the delivery log.
/// </summary>
public sealed class DeliveryWorker(
    IMessageQueue queue,
    IDeliveryLog log,
    Redriver redriver,
    RelayCircuit circuit,
    IOptions<IonOptions> ionOptions,
    IOptions<SmtpOptions> smtpOptions,
    IOptions<DeliveryOptions> deliveryOptions,
    TimeProvider time,
    ILogger<DeliveryWorker> logger) : BackgroundService
{
    private readonly DeliveryOptions _options = deliveryOptions.Value;
    private readonly MessageRules _rules = ionOptions.Value.ToMessageRules();
    private RateLimiter? _rate;

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.Enabled)
        {
            Log.Disabled(logger);
            return Task.CompletedTask;
        }
        _rate = CreateRateLimiter(_options.RatePerSecond);
        var slots = Enumerable.Range(0, _options.Concurrency)
            .Select(slot => Task.Run(() => RunSlotAsync(slot, stoppingToken), CancellationToken.None));
        return Task.WhenAll([.. slots, ProbeRelayAsync(stoppingToken), PruneLogAsync(stoppingToken)]);
    }

    public override void Dispose()
    {
        _rate?.Dispose();
        base.Dispose();
    }

    private async Task RunSlotAsync(int slot, CancellationToken stoppingToken)
    {
        await using var sender = new SmtpSender(smtpOptions.Value, time);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await circuit.WaitUntilClosedAsync(stoppingToken);
                var batch = await queue.ReceiveAsync(_options.BatchSize, stoppingToken);
                if (batch.Count > 0)
                    await ProcessBatchAsync(sender, batch, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception error)
            {
                // The queue itself failed (disk full, file locked for too long): what this slot held becomes
                // visible again after the visibility timeout. Back off rather than spin, and keep going.
                Log.SlotFailed(logger, slot, error);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
    }

    /// <summary>
    /// One batch, message by message. Successes are recorded and completed together at the end (one log write, one
    /// queue write for the batch); failures, the rare case, are recorded and moved at once. The log's "sent" always
    /// lands before the completion, so a crash between the two is caught by the idempotency check on redelivery.
    /// </summary>
    private async Task ProcessBatchAsync(SmtpSender sender, IReadOnlyList<QueuedMessage> batch, CancellationToken stoppingToken)
    {
        var sent = new HashSet<string>(await log.SentAmongAsync([.. batch.Select(m => m.Id)], CancellationToken.None), StringComparer.Ordinal);
        var batchDone = new BatchDone();
        try
        {
            for (var i = 0; i < batch.Count; i++)
            {
                if (stoppingToken.IsCancellationRequested || circuit.IsOpen)
                {
                    // Give back what this slot holds so another worker (or this one, later) takes it at once
                    // rather than after the visibility timeout.
                    await ReleaseAllAsync(batch.Skip(i));
                    break;
                }
                try
                {
                    await ProcessAsync(sender, batch[i], sent, batchDone, stoppingToken);
                }
                catch (Exception error) when (error is not OperationCanceledException && error is not StoreUnavailableException)
                {
                    // A bug met by this message (not the queue failing): count it as a failed attempt, so the message
                    // ends in the dead letters after MaxAttempts instead of coming back forever.
                    Log.Unexpected(logger, batch[i].Id, error);
                    var reason = $"internal error: {error.GetType().Name}: {error.Message}";
                    await RetryOrDeadLetterAsync(batch[i], new DeliveryAttempt(time.GetUtcNow(), "retry", null, reason, TimeSpan.Zero));
                }
            }
        }
        finally
        {
            await log.RecordAttemptsAsync(batchDone.Records, CancellationToken.None);
            await queue.CompleteAsync(batchDone.Messages, CancellationToken.None);
        }
    }

    /// <summary>What a batch completes at its end: the messages, and the attempts to record first.</summary>
    private sealed class BatchDone
    {
        public List<QueuedMessage> Messages { get; } = [];
        public List<AttemptRecord> Records { get; } = [];
    }

    /// <summary>One message, start to finish. Everything the message may cause is an outcome, so a bad message
    /// cannot stop the slot or block the messages behind it.</summary>
    private async Task ProcessAsync(SmtpSender sender, QueuedMessage message, HashSet<string> sent, BatchDone done, CancellationToken stoppingToken)
    {
        switch (MessageParser.Parse(message.Body, _rules))
        {
            case InvalidMessage invalid:
                await RecordAsync(new AttemptRecord(message.Id, new DeliveryAttempt(time.GetUtcNow(), "invalid", null, invalid.Reason, TimeSpan.Zero), MessageState.Dead, invalid.Reason));
                await queue.DeadLetterAsync(message, invalid.Reason, CancellationToken.None);
                Log.Invalid(logger, message.Id, invalid.Reason);
                break;
            case RedriveRequest redrive:
                var moved = await redriver.RedriveAsync(redrive.Ids, CancellationToken.None);
                done.Messages.Add(message);
                Log.Redriven(logger, moved.Count);
                break;
            case SendRequest send when sent.Contains(message.Id):
                // Idempotency: this id was delivered before (a repeated publish, or a redelivery after a crash
                // between the send and the completion).
                done.Messages.Add(message);
                Log.AlreadySent(logger, message.Id);
                break;
            case SendRequest send:
                await SendAsync(sender, message, send.Email, sent, done, stoppingToken);
                break;
        }
    }

    private async Task SendAsync(SmtpSender sender, QueuedMessage message, EmailMessage email, HashSet<string> sent, BatchDone done, CancellationToken stoppingToken)
    {
        if (_rate is not null)
        {
            try
            {
                using var lease = await _rate.AcquireAsync(1, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                await queue.ReleaseAsync(message, TimeSpan.Zero, CancellationToken.None);
                throw;
            }
        }

        var startedAt = time.GetUtcNow();
        var started = time.GetTimestamp();
        var mime = MimeBuilder.Build(email, message.Id, _rules, startedAt);
        // The send is not cancelled at shutdown: stopping mid-DATA would make a duplicate likely. The command
        // timeout bounds it.
        var outcome = await sender.SendAsync(mime, CancellationToken.None);
        var elapsed = time.GetElapsedTime(started);
        var attempts = message.Attempts + 1;

        switch (outcome.Kind)
        {
            case OutcomeKind.Sent:
                sent.Add(message.Id);
                done.Records.Add(new AttemptRecord(message.Id, Attempt("sent"), MessageState.Sent));
                done.Messages.Add(message);
                Log.Sent(logger, message.Id, attempts, elapsed.TotalMilliseconds);
                break;
            case OutcomeKind.Rejected:
                var rejected = $"rejected: {outcome.Reply}";
                await RecordAsync(new AttemptRecord(message.Id, Attempt("rejected"), MessageState.Dead, rejected));
                await queue.DeadLetterAsync(message, rejected, CancellationToken.None);
                Log.DeadLettered(logger, message.Id, attempts, rejected);
                break;
            case OutcomeKind.RetryLater:
                await RetryOrDeadLetterAsync(message, Attempt("retry"));
                break;
            case OutcomeKind.RelayUnavailable:
                // Not the message's fault: no attempt spent, no attempt recorded.
                await queue.ReleaseAsync(message, TimeSpan.Zero, CancellationToken.None);
                if (!circuit.IsOpen)
                    Log.RelayDown(logger, outcome.Reply);
                circuit.Open(outcome.Reply);
                break;
        }

        DeliveryAttempt Attempt(string name) => new(startedAt, name, outcome.SmtpCode, outcome.Reply, elapsed);
    }

    /// <summary>A failed attempt that may succeed later: retry with backoff, or, after MaxAttempts, dead letter
    /// with the last reason.</summary>
    private async Task RetryOrDeadLetterAsync(QueuedMessage message, DeliveryAttempt attempt)
    {
        var attempts = message.Attempts + 1;
        if (attempts >= _options.MaxAttempts)
        {
            var gaveUp = $"gave up after {attempts} attempts: {attempt.Reply}";
            await RecordAsync(new AttemptRecord(message.Id, attempt, MessageState.Dead, gaveUp));
            await queue.DeadLetterAsync(message, gaveUp, CancellationToken.None);
            Log.DeadLettered(logger, message.Id, attempts, gaveUp);
            return;
        }
        var delay = RetrySchedule.Delay(attempts, _options.RetryBaseDelay, _options.RetryMaxDelay, Random.Shared.NextDouble());
        await RecordAsync(new AttemptRecord(message.Id, attempt, MessageState.Retrying));
        await queue.RetryLaterAsync(message, delay, CancellationToken.None);
        Log.Retrying(logger, message.Id, attempts, delay, attempt.Reply);
    }

    private Task RecordAsync(AttemptRecord record) => log.RecordAttemptsAsync([record], CancellationToken.None);

    private async Task ReleaseAllAsync(IEnumerable<QueuedMessage> messages)
    {
        foreach (var message in messages)
            await queue.ReleaseAsync(message, TimeSpan.Zero, CancellationToken.None);
    }

    /// <summary>While the circuit is open, tries to connect with growing pauses; closes it when the relay answers.</summary>
    private async Task ProbeRelayAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await circuit.WaitUntilOpenAsync(stoppingToken);
                for (var probe = 1; circuit.IsOpen; probe++)
                {
                    var pause = RetrySchedule.Delay(probe, _options.RelayProbeBaseDelay, _options.RelayProbeMaxDelay, Random.Shared.NextDouble());
                    await Task.Delay(pause, time, stoppingToken);
                    await using var prober = new SmtpSender(smtpOptions.Value, time);
                    var failure = await prober.ConnectAsync(stoppingToken);
                    if (failure is null)
                    {
                        circuit.Close();
                        Log.RelayBack(logger, probe);
                    }
                    else
                    {
                        circuit.Open(failure.Reply);
                        Log.RelayStillDown(logger, probe, failure.Reply);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task PruneLogAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromHours(1), time);
        try
        {
            do
            {
                try
                {
                    var removed = await log.PruneAsync(_options.LogRetention, stoppingToken);
                    if (removed > 0)
                        Log.Pruned(logger, removed);
                }
                catch (Exception error) when (error is not OperationCanceledException)
                {
                    Log.PruneFailed(logger, error);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private static TokenBucketRateLimiter? CreateRateLimiter(double perSecond)
    {
        if (perSecond <= 0)
            return null;
        // Refill often enough that the rate is smooth, but no more than every 10 ms (timer resolution).
        var period = TimeSpan.FromSeconds(Math.Max(0.01, 1 / perSecond));
        var tokensPerPeriod = (int)Math.Max(1, Math.Round(perSecond * period.TotalSeconds));
        return new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = tokensPerPeriod,
            TokensPerPeriod = tokensPerPeriod,
            ReplenishmentPeriod = period,
            QueueLimit = int.MaxValue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = true,
        });
    }
}
