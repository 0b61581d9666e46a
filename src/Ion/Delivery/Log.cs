namespace Ion.Delivery;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Sent {MessageId} (attempt {Attempt}, {ElapsedMs:F0} ms)")]
    public static partial void Sent(ILogger logger, string messageId, int attempt, double elapsedMs);

    [LoggerMessage(2, LogLevel.Warning, "Retrying {MessageId} in {Delay} after attempt {Attempt}: {Reason}")]
    public static partial void Retrying(ILogger logger, string messageId, int attempt, TimeSpan delay, string reason);

    [LoggerMessage(3, LogLevel.Warning, "Dead-lettered {MessageId} after {Attempts} attempt(s): {Reason}")]
    public static partial void DeadLettered(ILogger logger, string messageId, int attempts, string reason);

    [LoggerMessage(4, LogLevel.Warning, "Dead-lettered {MessageId}: {Reason}")]
    public static partial void Invalid(ILogger logger, string messageId, string reason);

    [LoggerMessage(5, LogLevel.Information, "Skipped {MessageId}: already sent")]
    public static partial void AlreadySent(ILogger logger, string messageId);

    [LoggerMessage(6, LogLevel.Information, "Redrive moved {Count} dead letter(s) back to the queue")]
    public static partial void Redriven(ILogger logger, int count);

    [LoggerMessage(7, LogLevel.Error, "Relay unavailable, delivery paused (no attempts spent): {Reason}")]
    public static partial void RelayDown(ILogger logger, string reason);

    [LoggerMessage(8, LogLevel.Warning, "Relay probe {Probe} failed: {Reason}")]
    public static partial void RelayStillDown(ILogger logger, int probe, string reason);

    [LoggerMessage(9, LogLevel.Information, "Relay answers again after {Probes} probe(s), delivery resumed")]
    public static partial void RelayBack(ILogger logger, int probes);

    [LoggerMessage(10, LogLevel.Error, "Delivery slot {Slot} failed; retrying in 1 s")]
    public static partial void SlotFailed(ILogger logger, int slot, Exception error);

    [LoggerMessage(11, LogLevel.Information, "Pruned {Count} rows from the delivery log")]
    public static partial void Pruned(ILogger logger, int count);

    [LoggerMessage(12, LogLevel.Error, "Pruning the delivery log failed")]
    public static partial void PruneFailed(ILogger logger, Exception error);

    [LoggerMessage(14, LogLevel.Error, "Unexpected error delivering {MessageId}; counted as a failed attempt")]
    public static partial void Unexpected(ILogger logger, string messageId, Exception error);

    [LoggerMessage(13, LogLevel.Warning, "Delivery is disabled (Ion:Delivery:Enabled=false): messages are accepted and queued, not sent")]
    public static partial void Disabled(ILogger logger);
}
