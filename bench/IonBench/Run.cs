namespace IonBench;

/// <summary>Exit codes: 0 done, 1 the benchmark failed (a refused message, a missing delivery), with one line on stderr.</summary>
internal static class Run
{
    public static async Task<int> Async(Func<Task> body)
    {
        try
        {
            await body();
            return 0;
        }
        catch (Exception error) when (error is BenchFailure or HttpRequestException or IOException or TaskCanceledException)
        {
            await Console.Error.WriteLineAsync($"ionbench: {error.Message}");
            return 1;
        }
    }
}
