using Ion.Tests.Fixtures;

namespace Ion.Tests.Messages;

/// <summary>
/// Address rules as the built ion runs them. This test process has globalization of its own, so only
/// ion's own process shows whether ion maps domains with ICU: in invariant mode it mapped BÜCHER.DE to a
/// wrong A-label and took an invalid one, while every in-process test passed.
/// </summary>
public sealed class IonProcessAddressTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("ion-idn-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task Ion_TakesAnUpperCaseULabel_AndRefusesAnInvalidALabel()
    {
        var valid = await IonCli.RunAsync(_data, ["send", "--to", "bob@BÜCHER.DE", "--subject", "Hi", "--text", "x"]);
        var invalid = await IonCli.RunAsync(_data, ["send", "--to", "bob@xn--bcher-2pa.de", "--subject", "Hi", "--text", "x"]);

        Assert.True(valid.ExitCode == 0, valid.Error);
        Assert.Equal(2, invalid.ExitCode);
        Assert.Contains("the domain is not a valid internationalised domain name", invalid.Error, StringComparison.Ordinal);
    }
}
