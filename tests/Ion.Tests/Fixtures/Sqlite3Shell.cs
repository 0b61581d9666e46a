using System.Diagnostics;

namespace Ion.Tests.Fixtures;

// A second process on an SQLite file: the sqlite3 shell, fed SQL over stdin. SQLite's locks are
// per process and per file descriptor, so this is the real thing a second ion process would meet.
// test.sh installs sqlite3; without it these tests fail rather than skip.
public sealed class Sqlite3Shell : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private readonly Process _process;

    private Sqlite3Shell(Process process) => _process = process;

    public static Sqlite3Shell Start(string databasePath)
    {
        // -bail: a failing statement ends the shell, so RunAsync reports it instead of waiting forever.
        var start = new ProcessStartInfo("sqlite3")
        {
            ArgumentList = { "-batch", "-bail", databasePath },
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var process = Process.Start(start) ?? throw new InvalidOperationException("sqlite3 did not start");
        return new Sqlite3Shell(process);
    }

    // Runs the SQL and returns once the shell has executed it, with the lines it printed.
    public async Task<IReadOnlyList<string>> RunAsync(string sql, CancellationToken cancellationToken)
    {
        using var patience = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        patience.CancelAfter(Patience);
        var marker = $"done-{Guid.NewGuid():N}";
        await _process.StandardInput.WriteLineAsync($"{sql}\nSELECT '{marker}';".AsMemory(), patience.Token);
        await _process.StandardInput.FlushAsync(patience.Token);

        var lines = new List<string>();
        while (await _process.StandardOutput.ReadLineAsync(patience.Token) is { } line)
        {
            if (line == marker)
                return lines;
            lines.Add(line);
        }
        var error = await _process.StandardError.ReadToEndAsync(patience.Token);
        throw new InvalidOperationException($"sqlite3 exited running '{sql}': {error}");
    }

    // SIGKILL: no rollback, no unlock, no cleanup by the shell itself.
    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
            Kill();
        _process.Dispose();
    }
}
