using Microsoft.Extensions.Options;

namespace Ion.Queues;

/// <summary>
/// The queue's sizes for the metrics, read every few seconds in the background: a metrics reader observes gauges
/// synchronously, and counting the queue (SQLite, or SQS's attributes) is I/O.
/// </summary>
public sealed partial class QueueGauges(IMessageQueue queue, IOptions<MetricsOptions> options, TimeProvider time, ILogger<QueueGauges> logger)
    : BackgroundService
{
    /// <summary>The latest reading; null until the first (and in processes that do not run this, such as the CLI).</summary>
    public QueueCounts? Latest { get; private set; }

    /// <summary>How long the oldest message has been in the queue, when the store can say.</summary>
    public TimeSpan? OldestAge => Latest?.OldestEnqueuedAt is { } at ? time.GetUtcNow() - at : null;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.QueueInterval, time);
        try
        {
            do
            {
                try
                {
                    Latest = await queue.CountAsync(stoppingToken);
                }
                catch (StoreUnavailableException error)
                {
                    LogUnavailable(logger, error);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(401, LogLevel.Warning, "Could not count the queue for the metrics; trying again")]
    private static partial void LogUnavailable(ILogger logger, Exception error);
}
