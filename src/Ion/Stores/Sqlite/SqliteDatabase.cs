using Ion.Queues;
using Microsoft.Data.Sqlite;

namespace Ion.Stores.Sqlite;

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
    private readonly List<Schema> _schemas = [];
    private int _schemasApplied;
    private SqliteSession? _session;
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
    public Task<T> WriteAsync<T>(Durability durability, Func<SqliteSession, Task<T>> work, CancellationToken cancellationToken) =>
        UseAsync(async session =>
        {
            if (_synchronous != durability)
            {
                await session.Command(durability == Durability.Durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
                    .ExecuteNonQueryAsync(CancellationToken.None);
                _synchronous = durability;
            }
            // BEGIN IMMEDIATE takes the write lock up front (waiting on busy_timeout), so a transaction never
            // reads under a snapshot and then fails to upgrade because another writer went first.
            using var transaction = session.Connection.BeginTransaction(deferred: false);
            session.Transaction = transaction;
            try
            {
                var result = await work(session);
                transaction.Commit();
                return result;
            }
            finally
            {
                session.Transaction = null;
            }
        }, cancellationToken);

    public Task<T> ReadAsync<T>(Func<SqliteSession, Task<T>> work, CancellationToken cancellationToken) =>
        UseAsync(work, cancellationToken);

    /// <summary>Registers tables and indexes (idempotent <c>CREATE … IF NOT EXISTS</c> statements) to create before
    /// the next operation; called by each user of the file when it is built, so no one touches a missing table.
    /// <paramref name="upgrade"/> runs first, in the same transaction, to bring a file an older ion wrote up to date.</summary>
    public void AddSchema(string create, Func<SqliteCommand, Task>? upgrade = null)
    {
        lock (_schemas)
        {
            if (!_schemas.Exists(s => s.Create == create))
                _schemas.Add(new Schema(create, upgrade));
        }
    }

    /// <summary>The columns <paramref name="table"/> has (none when it does not exist yet), for upgrades.</summary>
    public static async Task<HashSet<string>> ColumnsAsync(SqliteCommand command, string table)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.CommandText = $"SELECT name FROM pragma_table_info('{table}')";
        HashSet<string> columns = new(StringComparer.OrdinalIgnoreCase);
        using var reader = await command.ExecuteReaderAsync(CancellationToken.None);
        while (await reader.ReadAsync(CancellationToken.None))
            columns.Add(reader.GetString(0));
        return columns;
    }

    private sealed record Schema(string Create, Func<SqliteCommand, Task>? Upgrade);

    public void Dispose()
    {
        // Waiting for the gate lets an operation in flight finish instead of losing its connection.
        _gate.Wait();
        try
        {
            _disposed = true;
            _session?.Dispose();
            _session = null;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<T> UseAsync<T>(Func<SqliteSession, Task<T>> work, CancellationToken cancellationToken)
    {
        // Cancellation is honoured until the work starts, never inside a transaction: these take milliseconds,
        // and a completion rolled back at shutdown would mean a duplicate email.
        await _gate.WaitAsync(cancellationToken);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _session ??= new SqliteSession(await OpenAsync(cancellationToken));
            await ApplySchemasAsync(_session.Connection);
            return await work(_session);
        }
        catch (Exception error) when (IsUnavailable(error))
        {
            throw new StoreUnavailableException($"the database {Path} is unavailable: {error.Message}", error);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>What the file or the machine did, not what ion asked: worth asking again later. Anything else
    /// (a constraint or SQL error) is a bug and stays as it is.</summary>
    private static bool IsUnavailable(Exception error) => error switch
    {
        // BUSY, LOCKED, NOMEM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, NOTADB
        SqliteException e => e.SqliteErrorCode is 5 or 6 or 7 or 8 or 10 or 11 or 13 or 14 or 15 or 26,
        IOException or UnauthorizedAccessException => true,
        _ => false,
    };

    private async Task ApplySchemasAsync(SqliteConnection connection)
    {
        Schema[] added;
        lock (_schemas)
            added = [.. _schemas.Skip(_schemasApplied)];
        if (added.Length == 0)
            return;
        using var transaction = connection.BeginTransaction(deferred: false);
        using var create = connection.CreateCommand();
        create.Transaction = transaction;
        foreach (var schema in added)
        {
            if (schema.Upgrade is { } upgrade)
                await upgrade(create);
            create.CommandText = schema.Create;
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

/// <summary>
/// The process's one connection, as an operation holding the file sees it: <see cref="Command"/> gives each SQL text's
/// command, prepared once and kept, inside the operation's transaction. Compiling every statement anew showed in
/// every profile of ion (<c>sqlite3RunParser</c>); kept, SQLite compiles each one once per process.
/// </summary>
public sealed class SqliteSession : IDisposable
{
    private readonly Dictionary<string, SqliteCommand> _commands = new(StringComparer.Ordinal);

    internal SqliteSession(SqliteConnection connection) => Connection = connection;

    internal SqliteConnection Connection { get; }

    internal SqliteTransaction? Transaction { get; set; }

    /// <summary>The command for <paramref name="sql"/>, in the current transaction if there is one. It belongs to the
    /// session: do not dispose it, and give every parameter its value (<see cref="SqliteCommandParameters.Set"/>)
    /// before running it, since parameters keep the values of the previous run.</summary>
    public SqliteCommand Command(string sql)
    {
        if (!_commands.TryGetValue(sql, out var command))
        {
            command = Connection.CreateCommand();
            command.CommandText = sql;
            _commands.Add(sql, command);
        }
        command.Transaction = Transaction;
        return command;
    }

    public void Dispose()
    {
        foreach (var command in _commands.Values)
            command.Dispose();
        _commands.Clear();
        Connection.Dispose();
    }
}

public static class SqliteCommandParameters
{
    /// <summary>The parameter <paramref name="name"/> of a kept command, added the first time.</summary>
    public static SqliteParameter Parameter(this SqliteCommand command, string name, SqliteType type)
    {
        ArgumentNullException.ThrowIfNull(command);
        return command.Parameters.Contains(name) ? command.Parameters[name] : command.Parameters.Add(name, type);
    }

    /// <summary>Sets (or first adds) the parameter <paramref name="name"/>; null is SQL NULL.</summary>
    public static void Set(this SqliteCommand command, string name, object? value)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Parameters.Contains(name))
            command.Parameters[name].Value = value ?? DBNull.Value;
        else
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
    }
}
