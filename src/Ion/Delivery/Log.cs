using Ion.Log;

namespace Ion.Delivery;

internal static partial class Log
{
    // One event per outcome. Recipients are their domains unless Ion:Delivery:LogRecipientAddresses allows addresses;
    // never a body or a secret.
    [LoggerMessage(1, LogLevel.Information, "{MessageId}: {Action} after {Attempts} counted attempt(s), {ElapsedMs:F0} ms, to {Recipients}, SMTP {SmtpCode}: {Reply}")]
    public static partial void Decided(ILogger logger, string messageId, QueueAction action, int attempts, double elapsedMs, string recipients,
        int? smtpCode, string reply);

    [LoggerMessage(3, LogLevel.Warning, "Dead-lettered {MessageId} after {Attempts} attempt(s): {Reason}")]
    public static partial void DeadLettered(ILogger logger, string messageId, int attempts, string reason);

    [LoggerMessage(4, LogLevel.Warning, "{MessageId} cannot be sent, {Reason}")]
    public static partial void Invalid(ILogger logger, string messageId, string reason);

    [LoggerMessage(5, LogLevel.Information, "{MessageId}: not sent by this copy ({Status})")]
    public static partial void NotClaimed(ILogger logger, string messageId, ClaimStatus status);

    [LoggerMessage(6, LogLevel.Information, "Redrive moved {Count} dead letter(s) back to the queue")]
    public static partial void Redriven(ILogger logger, int count);

    [LoggerMessage(7, LogLevel.Error, "The {Relay} relay is unavailable or refuses ion, its delivery paused (no attempts spent): {Reason}")]
    public static partial void RelayDown(ILogger logger, string relay, string reason);

    [LoggerMessage(8, LogLevel.Warning, "The relay throttles ({Reason}); sending at most {PerSecond} per second now")]
    public static partial void Throttled(ILogger logger, string reason, double? perSecond);

    [LoggerMessage(9, LogLevel.Information, "The {Relay} relay answers again, its delivery resumed")]
    public static partial void RelayBack(ILogger logger, string relay);

    [LoggerMessage(10, LogLevel.Error, "Delivery slot {Slot} failed; retrying in 1 s")]
    public static partial void SlotFailed(ILogger logger, int slot, Exception error);

    [LoggerMessage(11, LogLevel.Warning, "Redrove {Count} message(s) that a relay-wide refusal had dead-lettered")]
    public static partial void StreakRedriven(ILogger logger, int count);

    [LoggerMessage(12, LogLevel.Warning, "Could not {What} ({Failures} failure(s) so far), trying again: {Reason}")]
    public static partial void BookkeepingFailed(ILogger logger, string what, int failures, string reason);

    [LoggerMessage(15, LogLevel.Information, "Could {What} again after {Failures} failure(s)")]
    public static partial void BookkeepingRecovered(ILogger logger, string what, int failures);

    [LoggerMessage(16, LogLevel.Warning, "Gave up trying to {What}; the queue's visibility timeout or the delivery log covers it: {Reason}")]
    public static partial void BookkeepingGivenUp(ILogger logger, string what, string reason);

    [LoggerMessage(17, LogLevel.Warning, "Could not keep held messages hidden; trying again at the next heartbeat: {Reason}")]
    public static partial void HeartbeatFailed(ILogger logger, string reason);

    [LoggerMessage(18, LogLevel.Warning, "{MessageId}: its hold ran out while the store could not be written, and another receiver has it now; left to them")]
    public static partial void LetGo(ILogger logger, string messageId);

    [LoggerMessage(14, LogLevel.Error, "Unexpected error delivering {MessageId}; counted as a failed attempt")]
    public static partial void Unexpected(ILogger logger, string messageId, Exception error);

    [LoggerMessage(13, LogLevel.Warning, "Delivery is disabled (Ion:Delivery:Enabled=false): messages are accepted and queued, not sent")]
    public static partial void Disabled(ILogger logger);

    [LoggerMessage(21, LogLevel.Critical, "Delivery slot {Slot} stopped: {Reason}")]
    public static partial void StoreDamaged(ILogger logger, int slot, string reason);

    [LoggerMessage(19, LogLevel.Information, "Stopping delivery: no new work is taken; a send under way finishes, a receive still waiting for messages finishes its wait (up to 20 s on SQS) and gives back what it brings, and every message held goes back to the queue")]
    public static partial void Stopping(ILogger logger);

    [LoggerMessage(20, LogLevel.Information, "Delivery stopped after {Seconds:F1} s")]
    public static partial void Stopped(ILogger logger, double seconds);

    [LoggerMessage(22, LogLevel.Information, "Message {MessageId}: {Count} recipient(s) left out, on the suppression list ({Recipients})")]
    public static partial void Suppressed(ILogger logger, string messageId, int count, string recipients);
}
