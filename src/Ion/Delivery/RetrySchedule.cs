namespace Ion.Delivery;

/// <summary>Exponential backoff with jitter, as data: the delay before the next attempt is a pure function of the
/// attempts spent, so it travels with the message and survives restarts.</summary>
public static class RetrySchedule
{
    /// <param name="attempt">The attempt that just failed, from 1.</param>
    /// <param name="random">A number in [0, 1), injected so tests are exact.</param>
    /// <returns>A delay in [d/2, d] where d = min(maxDelay, baseDelay * 2^(attempt-1)): "equal jitter" spreads
    /// retries of messages that failed together without ever retrying almost at once.</returns>
    public static TimeSpan Delay(int attempt, TimeSpan baseDelay, TimeSpan maxDelay, double random)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attempt, 1);
        // 2^62 ticks overflows long: past ~40 doublings any sane base is far over the cap anyway.
        var exponent = Math.Min(attempt - 1, 40);
        var ticks = Math.Min(maxDelay.Ticks, baseDelay.Ticks * Math.Pow(2, exponent));
        var jittered = ticks / 2 + ticks / 2 * Math.Clamp(random, 0, 1);
        return TimeSpan.FromTicks((long)jittered);
    }
}
