using System.Globalization;
using System.Text.RegularExpressions;

namespace Ion.Delivery;

/// <summary>Exponential backoff with jitter, as data: the delay before the next attempt is a pure function of the
/// attempts spent, so it travels with the message and survives restarts; and the relay's own word on when to come
/// back, where it gives one that ion's limits allow.</summary>
public static partial class RetrySchedule
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

    /// <summary>The delay before the next attempt: the relay's hint (<see cref="Hint"/>) when one of the replies gives
    /// one between <paramref name="baseDelay"/> and <paramref name="maxDelay"/> (the longest, as the next attempt must
    /// satisfy them all), otherwise <see cref="Delay"/>. A hint outside those bounds is not followed: RFC 5321
    /// §4.5.4.1 leaves the retry interval to the sender, and ion's bounds are the operator's choice of it.</summary>
    public static TimeSpan Delay(int attempt, TimeSpan baseDelay, TimeSpan maxDelay, double random, IEnumerable<string?> replies)
    {
        ArgumentNullException.ThrowIfNull(replies);
        TimeSpan? hinted = null;
        foreach (var reply in replies)
            if (Hint(reply) is { } hint && hint >= baseDelay && hint <= maxDelay && (hinted is null || hint > hinted))
                hinted = hint;
        return hinted ?? Delay(attempt, baseDelay, maxDelay, random);
    }

    /// <summary>When a reply says to come back: "try again in 300 seconds", "retry in 5 minutes", "Greylisted for 60
    /// seconds", "retry after 120s". Null when it names no delay (most replies: "try again later"), so that numbers in a
    /// reply that are not delays (codes, addresses, "S77714") are never read as one.</summary>
    public static TimeSpan? Hint(string? reply)
    {
        if (string.IsNullOrEmpty(reply))
            return null;
        var match = HintPattern().Match(reply);
        if (!match.Success || !long.TryParse(match.Groups["n"].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            return null;
        var unit = match.Groups["unit"].Value.ToLowerInvariant();
        return unit[0] switch
        {
            'h' => TimeSpan.FromHours(n),
            'm' => TimeSpan.FromMinutes(n),
            _ => TimeSpan.FromSeconds(n),
        };
    }

    // A delay is a number with a unit after "in", "after", "for" or "wait": the phrasing relays use (Exim, Postfix
    // policy servers such as postgrey, Proofpoint, Yahoo's and Comcast's throttles). Six digits at most: a hint of
    // more than eleven days is no hint.
    [GeneratedRegex(@"\b(?:in|after|for|wait)\s+(?<n>\d{1,6})\s*(?<unit>seconds?|secs?|s|minutes?|mins?|hours?|hrs?|h)\b",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, matchTimeoutMilliseconds: 100)]
    private static partial Regex HintPattern();
}
