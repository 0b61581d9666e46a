using Ion.Stores.Sqlite;
using Ion.Suppression;
using Ion.Tests.Suppression;

namespace Ion.Tests.Stores.Sqlite;

public sealed class SqliteSuppressionListTests : SuppressionListContract, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ion-suppression-").FullName;
    private readonly List<SqliteDatabase> _databases = [];

    protected override Task<ISuppressionList> CreateListAsync()
    {
        var database = new SqliteDatabase(Path.Combine(_folder, "ion.db"));
        _databases.Add(database);
        return Task.FromResult<ISuppressionList>(new SqliteSuppressionList(database));
    }

    [Fact]
    public async Task Prune_DeletesTheExpiredRows_AndKeepsTheOthers()
    {
        var list = await CreateListAsync();
        var t0 = new DateTimeOffset(2026, 12, 7, 12, 0, 0, TimeSpan.Zero);
        await list.AddAsync([
            new SuppressedAddress("old@y.example", SuppressionReason.Bounce, "550 5.1.1", t0, t0.AddDays(90)),
            new SuppressedAddress("new@y.example", SuppressionReason.Bounce, "550 5.1.1", t0.AddDays(10), t0.AddDays(100)),
            new SuppressedAddress("carol@y.example", SuppressionReason.Complaint, "spam", t0),
        ], TestContext.Current.CancellationToken);

        Assert.Equal(1, await list.PruneAsync(t0.AddDays(95), TestContext.Current.CancellationToken));
        Assert.Equal(0, await list.PruneAsync(t0.AddDays(95), TestContext.Current.CancellationToken));

        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_folder, "ion.db")};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        using var rows = connection.CreateCommand();
        rows.CommandText = "SELECT address FROM suppressions ORDER BY address";
        List<string> left = [];
        await using (var reader = await rows.ExecuteReaderAsync(TestContext.Current.CancellationToken))
        {
            while (await reader.ReadAsync(TestContext.Current.CancellationToken))
                left.Add(reader.GetString(0));
        }
        Assert.Equal(["carol@y.example", "new@y.example"], left);
    }

    public void Dispose()
    {
        foreach (var database in _databases)
            database.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }
}
