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

}
