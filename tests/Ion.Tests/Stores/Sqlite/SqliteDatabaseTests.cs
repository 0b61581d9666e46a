using Ion.Queues;
using Ion.Stores.Sqlite;
using Microsoft.Data.Sqlite;

namespace Ion.Tests.Stores.Sqlite;

/// <summary>The one SQLite file of a process: writes asked for together share a transaction (group commit), each caller
/// gets its own answer or its own failure, reads run on a connection of their own; and the kept commands of
/// <see cref="SqliteSession"/> (one compiled statement per SQL text) must not let a failed run spoil the next.</summary>
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
        await _database.WriteAsync(Durability.Deferred, session => first = session.Command(Insert), Cancellation);
        await _database.WriteAsync(Durability.Durable, session => second = session.Command(Insert), Cancellation);
        Assert.Same(first, second);

        for (var x = 10; x < 13; x++)
            await WriteAsync(x);
        Assert.Equal([10L, 11L, 12L], await ValuesAsync());
    }

    [Fact]
    public async Task WritesAskedForDuringAWrite_GoTogetherInTheNextTransaction_EachWithItsOwnAnswer()
    {
        using var inFirst = new ManualResetEventSlim();
        using var releaseFirst = new ManualResetEventSlim();
        var first = Task.Run(() => _database.WriteAsync(Durability.Deferred, session =>
        {
            Insert1(session, 0);
            inFirst.Set();
            releaseFirst.Wait(Cancellation);
            return session.Transaction;
        }, Cancellation), Cancellation);
        inFirst.Wait(Cancellation);

        // Asked for while the first holds the file: they wait, and then share one transaction.
        var later = Enumerable.Range(1, 5).Select(i => _database.WriteAsync(Durability.Deferred, session =>
        {
            Insert1(session, i);
            return (Value: i, session.Transaction);
        }, Cancellation)).ToList();
        Assert.All(later, t => Assert.False(t.IsCompleted));
        releaseFirst.Set();

        var firstTransaction = await first;
        var answers = await Task.WhenAll(later);
        Assert.Equal([1, 2, 3, 4, 5], answers.Select(a => a.Value));
        var shared = Assert.Single(answers.Select(a => a.Transaction).Distinct());
        Assert.NotSame(firstTransaction, shared);
        Assert.Equal([0L, 1L, 2L, 3L, 4L, 5L], await ValuesAsync());
    }

    [Fact]
    public async Task AWorkThatFails_FailsOnlyItsOwnCaller_TheOthersOfItsTransactionAreWritten()
    {
        using var inFirst = new ManualResetEventSlim();
        using var releaseFirst = new ManualResetEventSlim();
        var first = Task.Run(() => _database.WriteAsync(Durability.Deferred, _ =>
        {
            inFirst.Set();
            releaseFirst.Wait(Cancellation);
            return 0;
        }, Cancellation), Cancellation);
        inFirst.Wait(Cancellation);

        var good = _database.WriteAsync(Durability.Deferred, session => Insert1(session, 7), Cancellation);
        var bad = _database.WriteAsync(Durability.Deferred, session => Insert1(session, null), Cancellation);
        var alsoGood = _database.WriteAsync(Durability.Durable, session => Insert1(session, 8), Cancellation);
        releaseFirst.Set();

        await first;
        await good;
        await alsoGood;
        var error = await Assert.ThrowsAsync<SqliteException>(() => bad);
        Assert.Contains("NOT NULL", error.Message, StringComparison.Ordinal);
        Assert.Equal([7L, 8L], await ValuesAsync());
    }

    [Fact]
    public async Task AFileThatCannotBeWritten_FailsEveryCaller_AsStoreUnavailable_AndReadsToo()
    {
        await WriteAsync(1);
        // Another process holds the write lock longer than the busy timeout: the file, not the work, is at fault.
        using var other = new SqliteConnection($"Data Source={_database.Path};Pooling=False");
        other.Open();
        using (var begin = other.CreateCommand())
        {
            begin.CommandText = "BEGIN EXCLUSIVE";
            begin.ExecuteNonQuery();
        }
        var writes = Enumerable.Range(0, 2).Select(i => Task.Run(() => WriteAsync(100 + i), Cancellation)).ToList();
        foreach (var write in writes)
            Assert.Contains("is unavailable", (await Assert.ThrowsAsync<StoreUnavailableException>(() => write)).Message, StringComparison.Ordinal);

        using (var rollback = other.CreateCommand())
        {
            rollback.CommandText = "ROLLBACK";
            rollback.ExecuteNonQuery();
        }
        await WriteAsync(2);
        Assert.Equal([1L, 2L], await ValuesAsync());
    }

    [Fact]
    public async Task AReadRunsBesideAWrite_AndSeesWhatWasCommittedBeforeIt()
    {
        await WriteAsync(1);
        using var inWrite = new ManualResetEventSlim();
        using var releaseWrite = new ManualResetEventSlim();
        var write = Task.Run(() => _database.WriteAsync(Durability.Deferred, session =>
        {
            Insert1(session, 2);
            inWrite.Set();
            releaseWrite.Wait(Cancellation);
            return 0;
        }, Cancellation), Cancellation);
        inWrite.Wait(Cancellation);

        // The write holds the file, uncommitted: the read is answered meanwhile, without its row.
        Assert.Equal([1L], await ValuesAsync());
        releaseWrite.Set();
        await write;
        Assert.Equal([1L, 2L], await ValuesAsync());
    }

    [Fact]
    public async Task AnAsyncWork_IsRefused()
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => _database.WriteAsync(Durability.Deferred, _ => Task.FromResult(1), Cancellation));
        Assert.Contains("synchronous", error.Message, StringComparison.Ordinal);
    }

    private static int Insert1(SqliteSession session, long? value)
    {
        var insert = session.Command(Insert);
        insert.Set("$x", value);
        return insert.ExecuteNonQuery();
    }

    /// <summary>Inserts <paramref name="values"/> in one transaction, each through the kept command.</summary>
    private Task<int> WriteAsync(params long?[] values) =>
        _database.WriteAsync(Durability.Deferred, session =>
        {
            foreach (var value in values)
                Insert1(session, value);
            return values.Length;
        }, Cancellation);

    private Task<List<long>> ValuesAsync() =>
        _database.ReadAsync(session =>
        {
            var select = session.Command("SELECT x FROM t ORDER BY rowid");
            List<long> values = [];
            using var reader = select.ExecuteReader();
            while (reader.Read())
                values.Add(reader.GetInt64(0));
            return values;
        }, Cancellation);
}
