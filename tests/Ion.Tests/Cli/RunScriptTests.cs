using System.Diagnostics;

namespace Ion.Tests.Cli;

/// <summary>run.sh itself, copied into a temp folder beside a stub <c>dotnet</c>: no build, no inbox, no ion, only
/// what the script does with the processes it starts.</summary>
public sealed class RunScriptTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ion-runsh-").FullName;
    private int? _ionPid;

    public void Dispose()
    {
        // A test that fails leaves the stub running: stop it here, not in the assertion's way.
        if (_ionPid is { } pid && IsRunning(pid))
        {
            using var left = Process.GetProcessById(pid);
            left.Kill();
        }
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Term_StopsIonServe_WhenRunInTheBackground()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        File.Copy(Path.Combine(Fixtures.Repository.Root, "run.sh"), Path.Combine(_dir, "run.sh"));
        var bin = Directory.CreateDirectory(Path.Combine(_dir, "stub-bin")).FullName;
        // `dotnet build …` succeeds at once; `dotnet .build/ion/ion.dll serve …` records its PID, answers run.sh's
        // health check through a file (ION_URL is file://…) and waits like a server, its output closed so that a
        // stub left running cannot hold the test's pipes open.
        await File.WriteAllTextAsync(Path.Combine(bin, "dotnet"), """
            #!/bin/sh
            [ "$1" = build ] && exit 0
            echo $$ > "$STUB_DIR/ion.pid"
            mkdir -p "$STUB_DIR/ion" && : > "$STUB_DIR/ion/healthz"
            exec sleep 600 </dev/null >/dev/null 2>&1
            """.Replace("\r", "", StringComparison.Ordinal), timeout.Token);
        await RunAsync("chmod", ["+x", Path.Combine(bin, "dotnet")], timeout.Token);

        var info = new ProcessStartInfo("bash", [Path.Combine(_dir, "run.sh")])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.Environment["PATH"] = $"{bin}:{Environment.GetEnvironmentVariable("PATH")}";
        info.Environment["STUB_DIR"] = _dir;
        info.Environment["ION_URL"] = $"file://{_dir}/ion";
        info.Environment["Ion__Smtp__Host"] = "relay.invalid"; // a relay is configured: no try-out inbox
        using var script = Process.Start(info) ?? throw new InvalidOperationException("could not start run.sh");
        var listening = new TaskCompletionSource();
        var said = new System.Collections.Concurrent.ConcurrentQueue<string>();
        script.ErrorDataReceived += (_, line) =>
        {
            if (line.Data is not { } text)
                return;
            said.Enqueue(text);
            if (text.StartsWith("run.sh: ion is listening", StringComparison.Ordinal))
                listening.TrySetResult();
        };
        script.OutputDataReceived += (_, _) => { };
        script.BeginErrorReadLine();
        script.BeginOutputReadLine();
        script.StandardInput.Close();

        try
        {
            await listening.Task.WaitAsync(timeout.Token);
            _ionPid = int.Parse(await File.ReadAllTextAsync(Path.Combine(_dir, "ion.pid"), timeout.Token), System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(IsRunning(_ionPid.Value));

            await RunAsync("kill", ["-TERM", script.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], timeout.Token);
            await script.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            script.Kill(entireProcessTree: true);
            Assert.Fail($"run.sh did not get to listening, or did not stop, in 15 s; it said:\n{string.Join('\n', said)}");
        }

        Assert.False(IsRunning(_ionPid.Value), $"ion serve (pid {_ionPid}) is still running after run.sh was stopped");
    }

    /// <summary>Alive, not merely a zombie waiting for its parent.</summary>
    private static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0] != 'Z';
        }
        catch (Exception error) when (error is FileNotFoundException or DirectoryNotFoundException)
        {
            return false;
        }
    }

    private static async Task RunAsync(string program, string[] args, CancellationToken cancellationToken)
    {
        using var process = Process.Start(new ProcessStartInfo(program, args) { UseShellExecute = false })
            ?? throw new InvalidOperationException($"could not start {program}");
        await process.WaitForExitAsync(cancellationToken);
        Assert.Equal(0, process.ExitCode);
    }

}
