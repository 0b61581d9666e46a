namespace Ion.Queues;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Error, "The store cannot be written ({Title}): {Reason}; publishing answers 503 and delivery waits until it can")]
    public static partial void StoreFailing(ILogger logger, string title, string reason);

    [LoggerMessage(2, LogLevel.Information, "The store takes writes again after {Seconds:F0} s ({Title} before)")]
    public static partial void StoreBack(ILogger logger, string title, double seconds);
}
