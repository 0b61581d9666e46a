using Microsoft.Data.Sqlite;

namespace Ion.Queues;

/// <summary>
/// The one SQLite file of ion on one machine (queue, dead letters, delivery log), opened once per process and
/// shared by <see cref="SqliteQueue"/> and the delivery log. Other processes (<c>ion publish</c>, a second
/// <c>ion serve</c>) may open the same file; SQLite's own locking and busy timeout arbitrate between them.
/// </summary>
/// <remarks>
/// One connection, used by one operation at a time: SQLite admits one writer per file anyway, so callers in this
/// process wait on an async gate rather than blocking threads in SQLite's sleeping busy handler, and the queue
/// and the log never contend for the file's write lock with each other.
/// </remarks>
public sealed class SqliteDatabase : IDisposable
{
    // Other processes hold the write lock for one short transaction at a time; waiting this long for it means
    // something is stuck, and failing says so.
    private const int BusyTimeoutSeconds = 5;

    private readonly string _connectionString;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly List<string> _schemas = [];
    private int _schemasApplied;
    private SqliteConnection? _connection;
    private Durability _synchronous;
    private bool _disposed;

    public SqliteDatabase(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Path = System.IO.Path.GetFullPath(path);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            // Microsoft.Data.Sqlite retries SQLITE_BUSY itself until the command timeout; keep both limits
            // equal so a stuck writer fails after one timeout, not six.
            DefaultTimeout = BusyTimeoutSeconds,
        }.ToString();
    }

    public string Path { get; }

    /// <summary>Runs <paramref name="work"/> in a write transaction. <see cref="Durability.Durable"/> fsyncs the
    /// commit; <see cref="Durability.Deferred"/> survives a crash of the process but may be lost with the
    /// machine's power, until the next durable commit (which fsyncs everything before it too).</summary>
    public Task<T> WriteAsync<T>(Durability durability, Func<SqliteConnection, SqliteTransaction, Task<T>> work, CancellationToken cancellationToken) =>
        UseAsync(async connection =>
        {
            if (_synchronous != durability)
            {
                using var pragma = connection.CreateCommand();
                pragma.CommandText = durability == Durability.Durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
                await pragma.ExecuteNonQueryAsync(CancellationToken.None);
                _synchronous = durability;
            }
            // BEGIN IMMEDIATE takes the write lock up front (waiting on busy_timeout), so a transaction never
            // reads under a snapshot and then fails to upgrade because another writer went first.
            using var transaction = connection.BeginTransaction(deferred: false);
            var result = await work(connection, transaction);
            transaction.Commit();
            return result;
        }, cancellationToken);

    public Task<T> ReadAsync<T>(Func<SqliteConnection, Task<T>> work, CancellationToken cancellationToken) =>
        UseAsync(work, cancellationToken);

    /// <summary>Registers tables and indexes (idempotent <c>CREATE … IF NOT EXISTS</c> statements) to create before
    /// the next operation; called by each user of the file when it is built, so no one touches a missing table.</summary>
    public void AddSchema(string schema)
    {
        lock (_schemas)
        {
            if (!_schemas.Contains(schema))
                _schemas.Add(schema);
        }
    }

    public void Dispose()
    {
        // Waiting for the gate lets an operation in flight finish instead of losing its connection.
        _gate.Wait();
        try
        {
            _disposed = true;
            _connection?.Dispose();
            _connection = null;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<T> UseAsync<T>(Func<SqliteConnection, Task<T>> work, CancellationToken cancellationToken)
    {
        // Cancellation is honoured until the work starts, never inside a transaction: these take milliseconds,
        // and a completion rolled back at shutdown would mean a duplicate email.
        await _gate.WaitAsync(cancellationToken);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _connection ??= await OpenAsync(cancellationToken);
            await ApplySchemasAsync(_connection);
            return await work(_connection);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task ApplySchemasAsync(SqliteConnection connection)
    {
        string[] added;
        lock (_schemas)
            added = [.. _schemas.Skip(_schemasApplied)];
        if (added.Length == 0)
            return;
        using var transaction = connection.BeginTransaction(deferred: false);
        using var create = connection.CreateCommand();
        create.Transaction = transaction;
        foreach (var schema in added)
        {
            create.CommandText = schema;
            await create.ExecuteNonQueryAsync(CancellationToken.None);
        }
        transaction.Commit();
        _schemasApplied += added.Length;
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            using var setup = connection.CreateCommand();
            // busy_timeout first, so switching to WAL waits for another process doing the same. WAL lets readers
            // run beside the one writer.
            setup.CommandText = $"""
                PRAGMA busy_timeout = {BusyTimeoutSeconds * 1000};
                PRAGMA journal_mode = WAL;
                PRAGMA synchronous = FULL;
                """;
            await setup.ExecuteNonQueryAsync(cancellationToken);
            _synchronous = Durability.Durable;
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }
}

public enum Durability
{
    /// <summary>On disk (fsync) when the commit returns: what an accepted message needs.</summary>
    Durable,
    /// <summary>Survives a crash of ion; may be lost on power loss. For bookkeeping whose loss only means a
    /// message is tried again (at-least-once).</summary>
    Deferred,
}
