using Ion.Stores.Sqlite;
using Microsoft.Data.Sqlite;

namespace Ion.Tests.Stores.Sqlite;

/// <summary>The kept commands of <see cref="SqliteSession"/>: one compiled statement per SQL text, reused by every
/// operation, so a failed run must not spoil the next and every run must bind its own values.</summary>
public sealed class SqliteDatabaseTests : IDisposable
{
    private const string Insert = "INSERT INTO t (x) VALUES ($x)";

    private readonly string _folder = Directory.CreateTempSubdirectory("ion-db-").FullName;
    private readonly SqliteDatabase _database;

    public SqliteDatabaseTests()
    {
        _database = new SqliteDatabase(Path.Combine(_folder, "ion.db"));
        _database.AddSchema("CREATE TABLE IF NOT EXISTS t (x INTEGER NOT NULL)");
    }

    private static CancellationToken Cancellation => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        _database.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task AKeptCommandThatFailed_RollsBackItsTransaction_AndWorksInTheNext()
    {
        await WriteAsync(1);
        var error = await Assert.ThrowsAsync<SqliteException>(() => WriteAsync(2, null));
        Assert.Contains("NOT NULL", error.Message, StringComparison.Ordinal);
        await WriteAsync(3);

        // 2 went in before the failing row in the same transaction, so it was rolled back with it.
        Assert.Equal([1L, 3L], await ValuesAsync());
    }

    [Fact]
    public async Task AKeptCommand_IsTheSameObjectForTheSameText_AndTakesEachRunsValues()
    {
        SqliteCommand? first = null;
        SqliteCommand? second = null;
        await _database.WriteAsync(Durability.Deferred, session =>
        {
            first = session.Command(Insert);
            return Task.FromResult(0);
        }, Cancellation);
        await _database.WriteAsync(Durability.Durable, session =>
        {
            second = session.Command(Insert);
            return Task.FromResult(0);
        }, Cancellation);
        Assert.Same(first, second);

        for (var x = 10; x < 13; x++)
            await WriteAsync(x);
        Assert.Equal([10L, 11L, 12L], await ValuesAsync());
    }

    /// <summary>Inserts <paramref name="values"/> in one transaction, each through the kept command.</summary>
    private Task<int> WriteAsync(params long?[] values) =>
        _database.WriteAsync(Durability.Deferred, async session =>
        {
            var insert = session.Command(Insert);
            foreach (var value in values)
            {
                insert.Set("$x", value);
                await insert.ExecuteNonQueryAsync(Cancellation);
            }
            return values.Length;
        }, Cancellation);

    private Task<List<long>> ValuesAsync() =>
        _database.ReadAsync(async session =>
        {
            var select = session.Command("SELECT x FROM t ORDER BY rowid");
            List<long> values = [];
            using var reader = await select.ExecuteReaderAsync(Cancellation);
            while (await reader.ReadAsync(Cancellation))
                values.Add(reader.GetInt64(0));
            return values;
        }, Cancellation);
}
