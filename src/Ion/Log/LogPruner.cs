using Ion.Delivery;
using Ion.Events;
using Ion.Queues;
using Ion.Suppression;
using Microsoft.Extensions.Options;

namespace Ion.Log;

/// <summary>Forgets finished messages and dead webhook events older than <see cref="DeliveryOptions.LogRetention"/>, and
/// expired suppressions, once an hour.</summary>
public sealed class LogPruner(IDeliveryLog log, Suppressions suppressions, IOptions<DeliveryOptions> options, TimeProvider time, ILogger<LogPruner> logger,
    IEventOutbox? outbox = null) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromHours(1), time);
        try
        {
            do
            {
                try
                {
                    var removed = await log.PruneAsync(time.GetUtcNow() - options.Value.LogRetention, stoppingToken);
                    if (removed > 0)
                        LogPrunerLog.Pruned(logger, removed);
                    if (outbox is not null && await outbox.PruneAsync(time.GetUtcNow() - options.Value.LogRetention, stoppingToken) is > 0 and var events)
                        LogPrunerLog.PrunedEvents(logger, events);
                    if (suppressions.List is { } list && await list.PruneAsync(time.GetUtcNow(), stoppingToken) is > 0 and var expired)
                        LogPrunerLog.PrunedSuppressions(logger, expired);
                }
                catch (StoreUnavailableException error)
                {
                    LogPrunerLog.PruneFailed(logger, error);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}

internal static partial class LogPrunerLog
{
    [LoggerMessage(101, LogLevel.Information, "Pruned {Count} rows from the delivery log")]
    public static partial void Pruned(ILogger logger, int count);

    [LoggerMessage(103, LogLevel.Information, "Deleted {Count} expired entries from the suppression list")]
    public static partial void PrunedSuppressions(ILogger logger, int count);

    [LoggerMessage(104, LogLevel.Information, "Deleted {Count} dead webhook events past the log's retention")]
    public static partial void PrunedEvents(ILogger logger, int count);

    [LoggerMessage(102, LogLevel.Error, "Pruning the delivery log failed")]
    public static partial void PruneFailed(ILogger logger, Exception error);
}
