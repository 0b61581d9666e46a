using System.Diagnostics;

namespace Ion.Tests.Fixtures;

/// <summary>Runs one <c>ion …</c> command as its own process, as a user would, and collects what it printed.</summary>
public static class IonCli
{
    public sealed record Result(int ExitCode, string Out, string Error);

    public static async Task<Result> RunAsync(string dataDirectory, IEnumerable<string> args, string? stdin = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(IonProcess.IonDll());
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        info.ArgumentList.Add($"--Ion:DataDirectory={dataDirectory}");
        info.ArgumentList.Add("--Ion:DefaultSender=ion@test.example");
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start ion");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
            await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return new Result(process.ExitCode, await stdout, await stderr);
    }
}
