using Amazon.Runtime;
using Ion.Queues;

namespace IonBench;

/// <summary>Exit codes: 0 done, 1 the benchmark failed (a refused message, a missing delivery, an emulator that did not
/// answer), with one line on stderr.</summary>
internal static class Run
{
    public static async Task<int> Async(Func<Task> body)
    {
        try
        {
            await body();
            return 0;
        }
        catch (Exception error) when (error is BenchFailure or HttpRequestException or IOException or OperationCanceledException
            or AmazonServiceException or AmazonClientException or StoreUnavailableException)
        {
            // A failure of the benchmark says itself what went wrong; anything else is named by its type.
            await Console.Error.WriteLineAsync(error is BenchFailure ? $"ionbench: {error.Message}" : $"ionbench: {error.GetType().Name}: {error.Message}");
            return 1;
        }
    }
}
