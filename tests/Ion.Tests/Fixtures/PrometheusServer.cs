using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Ion.Tests.Fixtures;

/// <summary>
/// A real Prometheus server from Debian's <c>prometheus</c> package (test.sh installs it) on 127.0.0.1 with a free port,
/// its configuration and storage in a temp folder, stopped by its PID.
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    public const string PrometheusBinary = "/usr/bin/prometheus";

    private readonly Process _process;
    private readonly string _folder;
    private readonly ConcurrentQueue<string> _log;

    private PrometheusServer(Process process, string folder, ConcurrentQueue<string> log, int port)
    {
        _process = process;
        _folder = folder;
        _log = log;
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
    }

    public HttpClient Client { get; }

    /// <summary>What Prometheus logged so far, for a failure message.</summary>
    public string Log => string.Join('\n', _log);

    /// <summary>
    /// Starts Prometheus with <paramref name="config"/> as its configuration file, in a temp folder that also holds
    /// <paramref name="files"/> (name → content: rule files, a token file), which the configuration names relatively.
    /// </summary>
    public static async Task<PrometheusServer> StartAsync(string config, IReadOnlyDictionary<string, string> files)
    {
        var binary = Require(PrometheusBinary);
        var folder = Directory.CreateTempSubdirectory("ion-prometheus-").FullName;
        await File.WriteAllTextAsync(Path.Combine(folder, "prometheus.yml"), config);
        foreach (var (name, content) in files)
            await File.WriteAllTextAsync(Path.Combine(folder, name), content);
        var port = Ports.Free();
        var info = new ProcessStartInfo(binary)
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add($"--config.file={Path.Combine(folder, "prometheus.yml")}");
        info.ArgumentList.Add($"--storage.tsdb.path={Path.Combine(folder, "data")}");
        info.ArgumentList.Add($"--web.listen-address=127.0.0.1:{port}");
        var log = new ConcurrentQueue<string>();
        var process = Process.Start(info) ?? throw new InvalidOperationException($"{binary} did not start");
        process.OutputDataReceived += (_, e) => Keep(log, e.Data);
        process.ErrorDataReceived += (_, e) => Keep(log, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new PrometheusServer(process, folder, log, port);
        try
        {
            var deadline = Environment.TickCount64 + 30_000;
            while (!await server.IsReadyAsync())
            {
                if (process.HasExited || Environment.TickCount64 > deadline)
                    throw new InvalidOperationException($"Prometheus did not become ready on 127.0.0.1:{port}:\n{server.Log}");
                await Task.Delay(100);
            }
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    private static void Keep(ConcurrentQueue<string> log, string? line)
    {
        if (line is null)
            return;
        log.Enqueue(line);
        while (log.Count > 200)
            log.TryDequeue(out _);
    }

    internal static string Require(string binary) =>
        File.Exists(binary)
            ? binary
            : throw new InvalidOperationException(
                $"{binary} is missing: run ./test.sh, which installs Debian's prometheus package (apt-get install --no-install-recommends prometheus)");

    private async Task<bool> IsReadyAsync()
    {
        try
        {
            using var response = await Client.GetAsync("/-/ready");
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    /// <summary>An instant query through the HTTP API: each series' labels (without <c>__name__</c>) and value.</summary>
    public async Task<IReadOnlyList<(Dictionary<string, string> Labels, double Value)>> QueryAsync(string promql)
    {
        var data = await GetDataAsync($"/api/v1/query?query={Uri.EscapeDataString(promql)}");
        return [.. data.GetProperty("result").EnumerateArray().Select(series => (
            series.GetProperty("metric").EnumerateObject().Where(l => l.Name != "__name__").ToDictionary(l => l.Name, l => l.Value.GetString()!),
            double.Parse(series.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture)))];
    }

    /// <summary>The alerts pending or firing now: name, state and labels.</summary>
    public async Task<IReadOnlyList<(string Name, string State, Dictionary<string, string> Labels)>> AlertsAsync()
    {
        var data = await GetDataAsync("/api/v1/alerts");
        return [.. data.GetProperty("alerts").EnumerateArray().Select(alert =>
        {
            var labels = alert.GetProperty("labels").EnumerateObject().ToDictionary(l => l.Name, l => l.Value.GetString()!);
            return (labels["alertname"], alert.GetProperty("state").GetString()!, labels);
        })];
    }

    /// <summary>The scrape targets' health (up, down, unknown) and last error, by scrape URL.</summary>
    public async Task<IReadOnlyList<(string Url, string Health, string LastError)>> TargetsAsync()
    {
        var data = await GetDataAsync("/api/v1/targets");
        return [.. data.GetProperty("activeTargets").EnumerateArray().Select(target => (
            target.GetProperty("scrapeUrl").GetString()!, target.GetProperty("health").GetString()!, target.GetProperty("lastError").GetString()!))];
    }

    private async Task<JsonElement> GetDataAsync(string path)
    {
        var body = await Client.GetStringAsync(path, TestContext.Current.CancellationToken);
        var root = JsonDocument.Parse(body).RootElement;
        if (root.GetProperty("status").GetString() != "success")
            throw new InvalidOperationException($"Prometheus answered {path} with {body}");
        return root.GetProperty("data").Clone();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
