using System.Diagnostics;

namespace Ion.Tests.Fixtures;

/// <summary>
/// The Lambda's real <c>bootstrap</c>, built once per test run as it ships: <c>dotnet publish src/Ion.Lambda -c Release
/// -r linux-x64</c> with NativeAOT (clang and zlib1g-dev, which ./test.sh installs), into <c>.build/test-lambda/</c>.
/// Incremental: a run with nothing changed takes seconds. <c>ION_LAMBDA_BOOTSTRAP</c> names one built already.
/// </summary>
public static class LambdaBootstrap
{
    private static readonly Lazy<Task<string>> Built = new(BuildAsync);

    public static Task<string> PathAsync() => Built.Value;

    private static async Task<string> BuildAsync()
    {
        // ./test.sh has built it before the tests started, so that no test runs beside a NativeAOT build.
        if (Environment.GetEnvironmentVariable("ION_LAMBDA_BOOTSTRAP") is { Length: > 0 } built && File.Exists(built))
            return Path.GetFullPath(built);
        var root = Repository.Root;
        var output = Path.Combine(root, ".build", "test-lambda");
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { "publish", Path.Combine(root, "src", "Ion.Lambda"), "-c", "Release", "-r", "linux-x64", "-o", output, "-nologo", "-v", "quiet" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var bootstrap = Path.Combine(output, "bootstrap");
        if (process.ExitCode != 0 || !File.Exists(bootstrap))
            throw new InvalidOperationException($"publishing the Lambda bootstrap failed ({process.ExitCode}):\n{await stdout}\n{await stderr}");
        return bootstrap;
    }
}
