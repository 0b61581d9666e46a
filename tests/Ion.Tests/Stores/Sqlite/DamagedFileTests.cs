using System.Net;
using System.Text;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Stores.Sqlite;

/// <summary>A damaged <c>ion.db</c> (a disk fault, a bad copy, a file written by something else): ion refuses to start
/// on it, says so at run time and stops delivering, and <c>ion store check</c> / <c>ion store recover</c> save what can
/// be saved. Real files damaged by the test, real ion processes, real SMTP sinks.</summary>
public sealed class DamagedFileTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("ion-damaged-").FullName;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private string DatabasePath => Path.Combine(_data, "ion.db");

    public void Dispose() => Directory.Delete(_data, recursive: true);

    [Fact]
    public async Task ServeOnADamagedFile_RefusesToStart_WithOneLineNamingTheFileAndTheWayOut()
    {
        await PublishAsync(300);
        Damage(DatabasePath, 0.5);

        var serve = await IonCli.RunAsync(_data, ["serve", $"--urls=http://127.0.0.1:{Ports.Free()}", "--Ion:Smtp:Host=127.0.0.1", "--Ion:Smtp:Port=1", "--Ion:Smtp:Security=None"]);

        Assert.Equal(1, serve.ExitCode);
        var line = Assert.Single(serve.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(DatabasePath, line, StringComparison.Ordinal);
        Assert.Contains("damaged", line, StringComparison.Ordinal);
        Assert.Contains("ion store recover", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StoreCheck_FindsTheDamage_AndRecover_SavesWhatCanBeRead_KeepsTheDamagedFile_AndIonDeliversFromTheNewOne()
    {
        await PublishAsync(300);
        Damage(DatabasePath, 0.5);

        var check = await IonCli.RunAsync(_data, ["store", "check"]);
        Assert.Equal(1, check.ExitCode);
        Assert.Contains("is damaged", check.Error, StringComparison.Ordinal);

        var recover = await IonCli.RunAsync(_data, ["store", "recover"]);
        Assert.True(recover.ExitCode == 0, recover.Out + recover.Error);
        Assert.Contains("before: ", recover.Out, StringComparison.Ordinal);
        var after = recover.Out.Split('\n').Single(l => l.StartsWith("after:", StringComparison.Ordinal));
        var queued = int.Parse(after.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
        // The 4 KB lost hold a few messages at most; the rest is saved.
        Assert.InRange(queued, 250, 300);
        Assert.Single(Directory.GetFiles(_data, "ion.db.damaged-*"), f => !f.EndsWith("-wal", StringComparison.Ordinal) && !f.EndsWith("-shm", StringComparison.Ordinal));

        Assert.Equal(0, (await IonCli.RunAsync(_data, ["store", "check"])).ExitCode);
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonProcess.StartAsync(Ports.Free(), Settings(sink.Port));
        await sink.WaitForMessagesAsync(queued, TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task ASoundFile_PassesTheCheck_AndRecoverLeavesItAlone()
    {
        await PublishAsync(20);

        var check = await IonCli.RunAsync(_data, ["store", "check"]);
        Assert.Equal(0, check.ExitCode);
        Assert.Contains("ok; 20 queued or in flight, 0 dead letter(s), 20 message(s) in the delivery log", check.Out, StringComparison.Ordinal);
        var recover = await IonCli.RunAsync(_data, ["store", "recover"]);
        Assert.Equal(0, recover.ExitCode);
        Assert.Contains("nothing to recover", recover.Out, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_data, "ion.db.damaged-*"));
    }

    [Fact]
    public async Task RecoverWhileIonServeDelivers_IsRefused()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonProcess.StartAsync(Ports.Free(), Settings(sink.Port));
        await PublishAsync(5);
        await sink.WaitForMessagesAsync(5, TimeSpan.FromSeconds(30));

        var recover = await IonCli.RunAsync(_data, ["store", "recover", "--force"]);

        Assert.Equal(1, recover.ExitCode);
        Assert.Contains("stop it first", recover.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFileDamagedWhileIonRuns_StopsDelivery_AndReadyzSaysTheStoreIsDamaged()
    {
        // The relay is down while the backlog is queued, so ion has read none of the pages the test then damages.
        var relayPort = Ports.Free();
        await using var ion = await IonProcess.StartAsync(Ports.Free(), Settings(relayPort));
        await PublishAsync(3000);
        await CheckpointAsync();
        foreach (var at in new[] { 0.3, 0.5, 0.7 })
            Damage(DatabasePath, at);

        await using var sink = await SmtpSink.StartAsync(relayPort);
        await IonServer.WaitUntilAsync(async () =>
        {
            using var ready = await ion.Client.GetAsync("/readyz", Token);
            return ready.StatusCode == HttpStatusCode.ServiceUnavailable && (await ready.Content.ReadAsStringAsync(Token)).Contains("is damaged", StringComparison.Ordinal);
        }, "/readyz answers 503, the store damaged", TimeSpan.FromSeconds(60));

        // Delivery has stopped, not looping on the error: the count stays where it is.
        await IonServer.WaitUntilAsync(() => Task.FromResult(ion.Output.Any(l => l.Contains("stopped: the database", StringComparison.Ordinal))),
            "the slot's one line", TimeSpan.FromSeconds(30));
        var delivered = sink.Count;
        await Task.Delay(TimeSpan.FromSeconds(3), Token);
        Assert.Equal(delivered, sink.Count);
        Assert.True(delivered < 3000);
        Assert.Single(ion.Output, l => l.Contains("stopped: the database", StringComparison.Ordinal));
    }

    private string[] Settings(int relayPort) =>
    [
        $"--Ion:DataDirectory={_data}",
        "--Ion:Smtp:Host=127.0.0.1",
        $"--Ion:Smtp:Port={relayPort}",
        "--Ion:Smtp:Security=None",
        "--Ion:Delivery:PollInterval=00:00:00.1",
        "--Ion:Delivery:RelayProbeMaxDelay=00:00:01",
        "--Logging:LogLevel:Default=Warning",
    ];

    private async Task PublishAsync(int count)
    {
        var lines = new StringBuilder();
        var padding = new string('x', 900);
        for (var i = 0; i < count; i++)
            lines.Append(System.Globalization.CultureInfo.InvariantCulture, $$"""{"action":"send","id":"m-{{Guid.NewGuid():N}}","recipient":"a@example.com","subject":"{{i}}","body_text":"{{padding}}"}""").Append('\n');
        var publish = await IonCli.RunAsync(_data, ["publish", "-"], lines.ToString());
        Assert.True(publish.ExitCode == 0, publish.Error);
    }

    /// <summary>Moves what the WAL holds into the main file, where the test damages it.</summary>
    private async Task CheckpointAsync()
    {
        var info = new System.Diagnostics.ProcessStartInfo("sqlite3", [DatabasePath, "PRAGMA wal_checkpoint(TRUNCATE);"]) { RedirectStandardOutput = true };
        using var shell = System.Diagnostics.Process.Start(info)!;
        await shell.WaitForExitAsync(Token);
        Assert.Equal(0, shell.ExitCode);
    }

    /// <summary>Overwrites 4 KB, page-aligned, at <paramref name="fraction"/> of the file with bytes no page has.</summary>
    private static void Damage(string path, double fraction)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        var at = (long)(file.Length * fraction) / 4096 * 4096;
        file.Seek(at, SeekOrigin.Begin);
        file.Write(Enumerable.Repeat((byte)0xA5, 4096).ToArray());
    }
}
