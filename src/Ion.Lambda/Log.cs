namespace Ion.Lambda;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Warning, "The relay is down ({Reply}): {Count} message(s) go back for {Delay}, with no attempt spent")]
    public static partial void RelayDown(ILogger logger, int count, TimeSpan delay, string? reply);

    [LoggerMessage(2, LogLevel.Warning, "Close to the invocation's deadline ({Deadline:O}): the rest of the batch goes back and the SMTP connection is closed")]
    public static partial void Deadline(ILogger logger, DateTimeOffset deadline);

    [LoggerMessage(3, LogLevel.Information, "Invocation {RequestId}: {Count} record(s), {Failures} to come back")]
    public static partial void Invoked(ILogger logger, string requestId, int count, int failures);

    [LoggerMessage(4, LogLevel.Error, "Invocation {RequestId} failed: every record of its batch comes back")]
    public static partial void InvocationFailed(ILogger logger, string requestId, Exception error);

    // The reason, not a stack trace: the record comes back, and the next try says whether it lasts.
    [LoggerMessage(5, LogLevel.Warning, "Could not take record {MessageId} of the feedback queue ({Error}: {Reason}); it comes back after the queue's visibility timeout")]
    public static partial void FeedbackFailed(ILogger logger, string messageId, string error, string reason);

    [LoggerMessage(6, LogLevel.Error, "{Count} record(s) of the feedback queue {QueueUrl}, but the AWS store keeps no suppression list without Ion:Aws:SuppressionTable: they go back, and wait in the queue")]
    public static partial void FeedbackWithoutList(ILogger logger, int count, string? queueUrl);
}
