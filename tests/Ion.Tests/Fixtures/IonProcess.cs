using System.Collections.Concurrent;
using System.Diagnostics;

namespace Ion.Tests.Fixtures;

/// <summary><c>ion serve</c> as a separate process (the built ion.dll run by dotnet), for what only a real process
/// shows: kill -9 and a restart on the same data.</summary>
public sealed class IonProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private IonProcess(Process process, int port)
    {
        _process = process;
        Port = port;
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
    }

    public int Port { get; }
    public HttpClient Client { get; }

    /// <summary>What it wrote to stdout so far, a line each.</summary>
    public IReadOnlyCollection<string> Output => _output;

    public static async Task<IonProcess> StartAsync(int port, IEnumerable<string> settings)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(IonDll());
        info.ArgumentList.Add("serve");
        info.ArgumentList.Add($"--urls=http://127.0.0.1:{port}");
        foreach (var setting in settings)
            info.ArgumentList.Add(setting);
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start ion");
        var ion = new IonProcess(process, port);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                ion._output.Enqueue(e.Data);
        };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var deadline = Environment.TickCount64 + 30_000;
        while (true)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"ion exited with {process.ExitCode} at start");
            try
            {
                using var health = await ion.Client.GetAsync("/healthz");
                if (health.IsSuccessStatusCode)
                    return ion;
            }
            catch (HttpRequestException) when (Environment.TickCount64 < deadline)
            {
            }
            await Task.Delay(100);
        }
    }

    /// <summary>SIGTERM, as an orchestrator stops a process (a rolling deploy, a scale-in): ion stops gracefully.
    /// Returns at once; <see cref="WaitForExitAsync"/> waits for the end.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])
            ?? throw new InvalidOperationException("could not run kill");
        kill.WaitForExit();
    }

    /// <summary>Waits for the process to exit; returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        wait.CancelAfter(timeout);
        try
        {
            await _process.WaitForExitAsync(wait.Token);
        }
        catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"ion did not exit within {timeout}");
        }
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: no shutdown, no cleanup, like a power cut to the process.</summary>
    public async Task KillAsync()
    {
        if (_process.HasExited)
            return;
        _process.Kill();
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await KillAsync();
        _process.Dispose();
    }

    /// <summary>src/Ion's build output, in the same configuration as this test assembly.</summary>
    public static string IonDll()
    {
        var testBin = AppContext.BaseDirectory;                  // …/tests/Ion.Tests/bin/Debug/net10.0/
        var configuration = new DirectoryInfo(testBin).Parent!.Name;
        var dll = Repository.Path("src", "Ion", "bin", configuration, "net10.0", "ion.dll");
        return File.Exists(dll) ? dll : throw new InvalidOperationException($"{dll} not built");
    }
}
