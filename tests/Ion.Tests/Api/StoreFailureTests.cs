using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Api;

/// <summary>A store that cannot be written, as a deployment meets it: the data directory's disk full (a real 16 MB tmpfs
/// the test fills), and on AWS the services gone (the emulators stopped). ion answers 503 with Retry-After and why,
/// says so once in its log, /readyz answers 503, the metric shows it, and ion carries on by itself once it can write,
/// having lost nothing it accepted.</summary>
// Reads ion's numbers off /metrics: alone, as OpenTelemetry listens to meters by name, process-wide (MetricsCollection).
[Collection(nameof(MetricsCollection))]
public sealed class StoreFailureTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AFullDisk_Answers503StorageFull_ReadyzSaysSo_OneLogLine_AndIonRecoversOnceSpaceIsFreed()
    {
        await using var disk = await Tmpfs.MountAsync("16m");
        // Ballast the test deletes to free space again: more than the file's WAL, which SQLite must copy into the
        // file at the next checkpoint (a disk freed by less stays full for SQLite).
        var ballast = Path.Combine(disk.Path, "ballast");
        await File.WriteAllBytesAsync(ballast, new byte[10 * 1024 * 1024], Token);
        var data = Path.Combine(disk.Path, "data");
        // The relay is down: nothing is delivered, every accepted message stays in the file.
        await using var ion = await IonProcess.StartAsync(Ports.Free(),
        [
            $"--Ion:DataDirectory={data}", "--Ion:Smtp:Host=127.0.0.1", $"--Ion:Smtp:Port={Ports.Free()}", "--Ion:Smtp:Security=None",
        ]);

        List<string> accepted = [];
        HttpResponseMessage? refused = null;
        var text = new string('x', 40_000);
        for (var i = 0; i < 1000 && refused is null; i++)
        {
            var response = await ion.Client.PostAsJsonAsync("/v1/messages",
                new { action = "send", id = $"fill-{i}", recipient = "a@example.com", subject = "Fill", body_text = text }, Token);
            if (response.StatusCode == HttpStatusCode.Accepted)
                accepted.Add($"fill-{i}");
            else
                refused = response;
        }

        Assert.NotNull(refused);
        Assert.NotEmpty(accepted);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(30), refused.Headers.RetryAfter?.Delta);
        var problem = await refused.Content.ReadFromJsonAsync<JsonElement>(Token);
        Assert.Equal("storage full", problem.GetProperty("title").GetString());
        Assert.Contains("storage full", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        // More refused publishes: the same answer, and still one line in the log, without a stack trace.
        for (var i = 0; i < 5; i++)
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await ion.Client.PostAsJsonAsync("/v1/messages",
                new { action = "send", recipient = "a@example.com", subject = "More", body_text = text }, Token)).StatusCode);
        using (var ready = await ion.Client.GetAsync("/readyz", Token))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Contains("storage full since", await ready.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);
        }
        Assert.Contains("ion_store_failing{otel_scope_name=\"Ion\",reason=\"full\"} 1", await ion.Client.GetStringAsync("/metrics", Token), StringComparison.Ordinal);
        var publish = await IonCli.RunAsync(data, ["publish", "-"], """{"action":"send","recipient":"a@example.com","subject":"CLI","body_text":"x"}""");
        Assert.Equal(1, publish.ExitCode);
        Assert.StartsWith("ion: the database", publish.Error, StringComparison.Ordinal);
        Assert.Contains("storage full", publish.Error, StringComparison.Ordinal);
        await Task.Delay(TimeSpan.FromMilliseconds(500), Token);
        Assert.Single(ion.Output, l => l.Contains("The store cannot be written (storage full)", StringComparison.Ordinal));
        Assert.DoesNotContain(ion.Output, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
        // Nor one per health probe: /readyz says it, the log said it once.
        Assert.DoesNotContain(ion.Output, l => l.Contains("Health check store", StringComparison.Ordinal));

        File.Delete(ballast);
        var again = await ion.Client.PostAsJsonAsync("/v1/messages",
            new { action = "send", id = "after", recipient = "a@example.com", subject = "After", body_text = "x" }, Token);
        Assert.True(again.StatusCode == HttpStatusCode.Accepted, await again.Content.ReadAsStringAsync(Token) + string.Join('\n', ion.Output.TakeLast(20)));
        using (var ready = await ion.Client.GetAsync("/readyz", Token))
            Assert.NotEqual(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        await IonServer.WaitUntilAsync(() => Task.FromResult(ion.Output.Any(l => l.Contains("The store takes writes again", StringComparison.Ordinal))), "the recovery's line");

        // Everything answered 202 is there.
        foreach (var id in accepted)
            Assert.Equal(HttpStatusCode.OK, (await ion.Client.GetAsync($"/v1/messages/{id}", Token)).StatusCode);
    }

    [Fact]
    public async Task OnAws_ServicesThatDoNotAnswer_Answer503StoreUnavailable_AndReadyzSaysSo()
    {
        var aws = new AwsEmulators();
        await aws.InitializeAsync();
        var stopped = false;
        try
        {
            var resources = await aws.ProvisionAsync();
            await using var sink = await SmtpSink.StartAsync();
            await using var ion = await IonServer.StartAsync(sink.Port, aws.Settings(resources));
            Assert.Equal(HttpStatusCode.Accepted, (await ion.Client.PostAsJsonAsync("/v1/messages",
                new { action = "send", recipient = "a@example.com", subject = "Before", body_text = "x" }, Token)).StatusCode);

            await aws.DisposeAsync();
            stopped = true;

            var refused = await ion.Client.PostAsJsonAsync("/v1/messages",
                new { action = "send", recipient = "a@example.com", subject = "During", body_text = "x" }, Token);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(5), refused.Headers.RetryAfter?.Delta);
            Assert.Equal("store unavailable", (await refused.Content.ReadFromJsonAsync<JsonElement>(Token)).GetProperty("title").GetString());
            using var ready = await ion.Client.GetAsync("/readyz", Token);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Contains("store unavailable since", await ready.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);
        }
        finally
        {
            if (!stopped)
                await aws.DisposeAsync();
        }
    }

    [Fact]
    public async Task OnAws_APublishTheTopicRefused_AndPublishedAgain_IsDeliveredAtOnce()
    {
        var aws = new AwsEmulators();
        await aws.InitializeAsync();
        try
        {
            var resources = await aws.ProvisionAsync();
            await using var sink = await SmtpSink.StartAsync();
            var message = new { action = "send", id = "retried-1", recipient = "a@example.com", subject = "Retried", body_text = "x" };
            // The topic is gone (deleted, or a wrong setting): the log's write is made, the publish refused.
            string[] gone = [.. aws.Settings(resources).Where(a => !a.StartsWith("--Ion:Aws:TopicArn=", StringComparison.Ordinal)),
                $"--Ion:Aws:TopicArn={resources.TopicArn}-gone", "--Ion:Delivery:Enabled=false"];
            await using (var refusing = await IonServer.StartAsync(sink.Port, gone))
            {
                var refused = await refusing.Client.PostAsJsonAsync("/v1/messages", message, Token);
                Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
                Assert.Equal("store unavailable", (await refused.Content.ReadFromJsonAsync<JsonElement>(Token)).GetProperty("title").GetString());
            }

            // The client tries again through an ion whose topic works: the copy it publishes is delivered now, not held
            // for two hours by the claim recorded for a copy that never reached the queue.
            await using var ion = await IonServer.StartAsync(sink.Port, aws.Settings(resources));
            Assert.Equal(HttpStatusCode.Accepted, (await ion.Client.PostAsJsonAsync("/v1/messages", message, Token)).StatusCode);
            Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(20)));
        }
        finally
        {
            await aws.DisposeAsync();
        }
    }

    /// <summary>A tmpfs of its own, mounted for the test (the tests run as root, as CI does) and unmounted after.</summary>
    private sealed class Tmpfs : IAsyncDisposable
    {
        private Tmpfs(string path) => Path = path;

        public string Path { get; }

        public static async Task<Tmpfs> MountAsync(string size)
        {
            var path = Directory.CreateTempSubdirectory("ion-full-").FullName;
            var mount = await RunAsync("mount", "-t", "tmpfs", "-o", $"size={size}", "tmpfs", path);
            Assert.True(mount.ExitCode == 0, $"mounting a {size} tmpfs (the test needs root): {mount.Error}");
            return new Tmpfs(path);
        }

        public async ValueTask DisposeAsync()
        {
            await RunAsync("umount", "-l", Path);
            Directory.Delete(Path, recursive: true);
        }

        private static async Task<(int ExitCode, string Error)> RunAsync(string file, params string[] args)
        {
            var info = new ProcessStartInfo(file, args) { RedirectStandardError = true, UseShellExecute = false };
            using var process = Process.Start(info)!;
            var error = await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            return (process.ExitCode, error);
        }
    }
}
