namespace IonBench;

/// <summary>Wall-clock times as unix nanoseconds: the unit bench/run's <c>date +%s%N</c> and the kernel's file
/// times use, so times taken here, in the script and by smtp-sink's files compare directly.</summary>
internal static class Clock
{
    public static DateTimeOffset Now() => TimeProvider.System.GetUtcNow();

    public static long UnixNanoseconds(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    public static long NowUnixNanoseconds() => UnixNanoseconds(Now());
}
