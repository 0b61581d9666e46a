using Ion.Queues;

namespace Ion.Delivery;

/// <summary>Writes to the store after the relay has answered, when the store is briefly unavailable (a file another
/// process holds locked, a throttled service): retried, never answered by sending again.</summary>
internal static class Bookkeeping
{
    private static readonly TimeSpan FirstPause = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan LongestPause = TimeSpan.FromSeconds(5);

    /// <summary>For a write whose loss would make ion send again (the record of a delivery): retried until it lands.
    /// The message stays held, and hidden, meanwhile.</summary>
    public static async Task UntilDoneAsync(Func<Task> write, string what, ILogger logger, TimeProvider time)
    {
        var pause = FirstPause;
        for (var failures = 1; ; failures++)
        {
            try
            {
                await write();
                if (failures > 1)
                    Log.BookkeepingRecovered(logger, what, failures - 1);
                return;
            }
            catch (StoreUnavailableException error) when (error.Fault != StoreFault.Damaged)
            {
                // Once, then every tenth time: a long lock should not fill the log. A damaged store will never take
                // the write: that goes up, and stops the slot.
                if (failures == 1 || failures % 10 == 0)
                    Log.BookkeepingFailed(logger, what, failures, error.Message);
                await Task.Delay(pause, time, CancellationToken.None);
                pause = TimeSpan.FromTicks(Math.Min(LongestPause.Ticks, pause.Ticks * 2));
            }
        }
    }

    /// <summary>For a write whose loss is safe (a deletion the log makes redundant, a release that the visibility
    /// timeout does anyway): a few tries, then left to those.</summary>
    public static async Task TryAsync(Func<Task> write, string what, ILogger logger)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await write();
                return;
            }
            catch (StoreUnavailableException error) when (attempt < 3)
            {
                Log.BookkeepingFailed(logger, what, attempt, error.Message);
                await Task.Delay(FirstPause * attempt, CancellationToken.None);
            }
            catch (StoreUnavailableException error)
            {
                Log.BookkeepingGivenUp(logger, what, error.Message);
                return;
            }
        }
    }
}
