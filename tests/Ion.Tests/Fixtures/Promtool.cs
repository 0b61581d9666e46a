using System.Diagnostics;

namespace Ion.Tests.Fixtures;

/// <summary>Prometheus's <c>promtool</c> from Debian's <c>prometheus</c> package (test.sh installs it), run once per call.</summary>
public static class Promtool
{
    public const string Binary = "/usr/bin/promtool";

    public sealed record Result(int ExitCode, string Output);

    /// <summary>promtool with <paramref name="args"/> in <paramref name="workingDirectory"/>: its exit code, and stdout
    /// then stderr.</summary>
    public static async Task<Result> RunAsync(string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo(PrometheusServer.Require(Binary))
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{Binary} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return new Result(process.ExitCode, await stdout + await stderr);
    }
}
