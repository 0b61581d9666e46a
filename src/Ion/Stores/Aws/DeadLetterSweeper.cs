using Ion.Log;
using Ion.Queues;
using Microsoft.Extensions.Options;

namespace Ion.Stores.Aws;

/// <summary>
/// Gives the dead letters SQS moved by itself a place in ion's log and listing. SQS's redrive policy is the backstop for
/// a message that kills its worker (or a worker that dies while holding it) every time: after maxReceiveCount
/// receives SQS moves it to the dead-letter queue without telling anyone, and without ion's note. Every
/// <see cref="AwsOptions.DeadLetterSweepInterval"/> (and at start) this scans the dead-letter queue and, for each such
/// letter, asks the log: delivered already, or being delivered by another copy, it is not needed and goes; otherwise it
/// is recorded dead (<see cref="FailureClass.Abandoned"/>) and noted like every other dead letter, so
/// <c>ion dead-letters list</c> shows it and a redrive brings it back.
/// </summary>
/// <remarks>A scan reads every dead letter (one receive per ten), so its cost grows with the dead-letter queue;
/// several workers share the work, since SQS's visibility gives each letter to one scan.</remarks>
public sealed partial class DeadLetterSweeper(SqsQueue queue, IDeliveryLog log, IonMetrics metrics, IOptions<AwsOptions> options, TimeProvider time,
    ILogger<DeadLetterSweeper> logger) : BackgroundService
{
    /// <summary>What the log and the letter say when nothing else is known of why it was given up.</summary>
    public const string AbandonedReason = "abandoned: workers received it again and again and never finished it (each stopped while"
        + " holding it), until the input queue's redrive policy (maxReceiveCount) moved it to the dead-letter queue";

    // Long enough for the sweep to decide about every letter: another copy holding it keeps it for its own lease.
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(5);

    private long _lastSweep = time.GetTimestamp();

    public TimeSpan Interval => options.Value.DeadLetterSweepInterval;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            do
            {
                await SweepAsync(stoppingToken);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>For a process that does not run the timer (the Lambda): one sweep when <see cref="Interval"/> has passed
    /// since the last one (or since start).</summary>
    public async Task SweepIfDueAsync(CancellationToken cancellationToken)
    {
        if (time.GetElapsedTime(Interlocked.Read(ref _lastSweep)) >= Interval)
            await SweepAsync(cancellationToken);
    }

    private async Task SweepAsync(CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _lastSweep, time.GetTimestamp());
        try
        {
            var (noted, dropped) = await queue.NoteUnnotedDeadLettersAsync(DecideAsync, cancellationToken);
            if (noted + dropped > 0)
                Log.Swept(logger, noted, dropped);
        }
        catch (StoreUnavailableException error)
        {
            Log.SweepFailed(logger, error.Message);
        }
    }

    /// <summary>The note for a letter SQS moved, recorded in the log; null when the letter is not needed.</summary>
    internal async Task<DeadLetterNote?> DecideAsync(QueuedMessage letter)
    {
        var claim = (await log.ClaimAsync([new ClaimRequest(letter.Id, letter.QueueMessageId, letter.EnqueuedAt)], Lease, CancellationToken.None))[0];
        var history = claim.History;
        switch (claim.Status)
        {
            case ClaimStatus.AlreadySent:
            case ClaimStatus.HeldByOther:
                return null;
            case ClaimStatus.Dead:
                // ion dead-lettered another copy already and said why.
                return new DeadLetterNote(history.LastReason ?? AbandonedReason, history.FailureClass ?? FailureClass.Abandoned, history.AttemptsUsed, null);
            default:
                await log.RecordAsync([new DeliveryEntry(letter.Id, letter.QueueMessageId, MessageState.Dead, null, history.Recipients,
                    history.AttemptsUsed, AbandonedReason, FailureClass.Abandoned, letter.Body)], CancellationToken.None);
                Log.Abandoned(logger, letter.Id);
                metrics.DeadLettered(FailureClass.Abandoned);
                return new DeadLetterNote(AbandonedReason, FailureClass.Abandoned, history.AttemptsUsed, null);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(301, LogLevel.Warning, "{Id} was moved to the dead-letter queue by SQS (maxReceiveCount): workers stopped while holding it; recorded as a dead letter")]
        public static partial void Abandoned(ILogger logger, string id);

        [LoggerMessage(302, LogLevel.Information, "Dead-letter queue swept: {Noted} letter(s) SQS moved were noted, {Dropped} not needed were deleted")]
        public static partial void Swept(ILogger logger, int noted, int dropped);

        // The store's reason, not a stack trace: an outage is not a bug, and the store's health says it too.
        [LoggerMessage(303, LogLevel.Warning, "Could not sweep the dead-letter queue; trying again later: {Reason}")]
        public static partial void SweepFailed(ILogger logger, string reason);
    }
}
