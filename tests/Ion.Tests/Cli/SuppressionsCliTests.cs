using System.Text.Json;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Cli;

/// <summary><c>ion suppressions …</c> as a user runs it: real processes on one temp data folder (issue 15, item 2).</summary>
public sealed class SuppressionsCliTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("ion-cli-suppressions-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_data, recursive: true);
    }

    private async Task<IonCli.Result> Run(string[] args, string? stdin = null)
    {
        var result = await IonCli.RunAsync(_data, args, stdin);
        output.WriteLine($"ion {string.Join(' ', args)} → {result.ExitCode}\n{result.Out}{result.Error}");
        return result;
    }

    [Fact]
    public async Task AddListRemove_CanonicalAddresses_WithFilters_AndClearErrors()
    {
        var added = await Run(["suppressions", "add", "Erin@Bücher.example", "frank@y.example", "--detail", "asked to stop"]);
        Assert.Equal(0, added.ExitCode);
        Assert.Equal(["Erin@xn--bcher-kva.example", "frank@y.example"], Lines(added.Out));
        Assert.Equal(0, (await Run(["suppressions", "add", "gina@y.example", "--reason", "complaint"])).ExitCode);

        var all = await Run(["suppressions", "list"]);
        Assert.Equal(0, all.ExitCode);
        var rows = Lines(all.Out).Select(l => l.Split('\t')).ToList();
        Assert.Equal(["Erin@xn--bcher-kva.example", "frank@y.example", "gina@y.example"], rows.Select(r => r[0]));
        Assert.Equal(["manual", "manual", "complaint"], rows.Select(r => r[1]));
        Assert.Equal("never", rows[0][3]);
        Assert.Equal("asked to stop", rows[0][4]);
        Assert.Contains("3 suppressed address(es)", all.Error, StringComparison.Ordinal);

        Assert.Equal(["Erin@xn--bcher-kva.example"], Lines((await Run(["suppressions", "list", "--domain", "BÜCHER.example"])).Out).Select(l => l.Split('\t')[0]));
        Assert.Equal(["gina@y.example"], Lines((await Run(["suppressions", "list", "--reason", "complaint"])).Out).Select(l => l.Split('\t')[0]));

        var removed = await Run(["suppressions", "remove", "erin@bücher.example", "nobody@y.example"]);
        Assert.Equal(1, removed.ExitCode);
        Assert.Equal(["erin@xn--bcher-kva.example"], Lines(removed.Out));
        Assert.Contains("not on the list: nobody@y.example", removed.Error, StringComparison.Ordinal);
        Assert.Equal(2, Lines((await Run(["suppressions", "list"])).Out).Count);

        var badAddress = await Run(["suppressions", "add", "not an address"]);
        Assert.Equal(2, badAddress.ExitCode);
        Assert.Contains("nothing was added", badAddress.Error, StringComparison.Ordinal);
        var badReason = await Run(["suppressions", "list", "--reason", "spam"]);
        Assert.Equal(2, badReason.ExitCode);
        Assert.Contains("--reason must be one of bounce, complaint, manual", badReason.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Export_ThenImportIntoAnotherIon_KeepsEveryEntry_AndABadLineImportsNothing()
    {
        await Run(["suppressions", "add", "bob@y.example", "--reason", "bounce", "--detail", "550 5.1.1 no such user"]);
        await Run(["suppressions", "add", "carol@z.example", "--reason", "complaint"]);
        var exported = await Run(["suppressions", "export"]);
        Assert.Equal(0, exported.ExitCode);
        var lines = Lines(exported.Out);
        Assert.Equal(2, lines.Count);
        var bob = JsonDocument.Parse(lines[0]).RootElement;
        Assert.Equal("bob@y.example", bob.GetProperty("address").GetString());
        Assert.Equal("bounce", bob.GetProperty("reason").GetString());
        Assert.Equal("550 5.1.1 no such user", bob.GetProperty("detail").GetString());
        Assert.Equal(JsonValueKind.String, bob.GetProperty("expires_at").ValueKind);

        // Another ion's data folder: the file round-trips, and bare addresses are manual entries.
        var other = Directory.CreateTempSubdirectory("ion-cli-suppressions-other-").FullName;
        try
        {
            var file = Path.Combine(other, "list.jsonl");
            await File.WriteAllTextAsync(file, exported.Out + "# added by hand\n\ndave@w.example\n", TestContext.Current.CancellationToken);

            var bad = await IonCli.RunAsync(other, ["suppressions", "import", "-"], exported.Out + "{\"address\": \"x@y.example\", \"reason\": \"spam\"}\nnot an address\n");
            Assert.Equal(2, bad.ExitCode);
            Assert.Contains("line 3: reason must be one of", bad.Error, StringComparison.Ordinal);
            Assert.Contains("line 4: 'not an address' is not an address", bad.Error, StringComparison.Ordinal);
            Assert.Contains("nothing was imported", bad.Error, StringComparison.Ordinal);
            Assert.Empty(Lines((await IonCli.RunAsync(other, ["suppressions", "list"])).Out));

            var imported = await IonCli.RunAsync(other, ["suppressions", "import", file]);
            Assert.Equal(0, imported.ExitCode);
            Assert.Equal("imported: 3", imported.Out.Trim());
            var again = Lines((await IonCli.RunAsync(other, ["suppressions", "export"])).Out);
            Assert.Equal(lines, again.Take(2));
            Assert.Equal("manual", JsonDocument.Parse(again[2]).RootElement.GetProperty("reason").GetString());

            var missing = await IonCli.RunAsync(other, ["suppressions", "import", Path.Combine(other, "nope.jsonl")]);
            Assert.Equal(2, missing.ExitCode);
            Assert.Contains("no such file", missing.Error, StringComparison.Ordinal);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(other, recursive: true);
        }
    }

    private static List<string> Lines(string text) =>
        [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
}
