using Ion.Queues;
using Microsoft.Data.Sqlite;

namespace Ion.Stores.Sqlite;

/// <summary>
/// The one SQLite file of ion on one machine (queue, dead letters, delivery log), opened once per process and
/// shared by <see cref="SqliteQueue"/> and the delivery log. Other processes (<c>ion publish</c>, a second
/// <c>ion serve</c>) may open the same file; SQLite's own locking and busy timeout arbitrate between them.
/// </summary>
/// <remarks>
/// <para>Every write of the process goes through one connection, and writes that callers ask for while another is
/// being written go together in the next transaction (group commit): N delivery slots recording outcomes, or N
/// publishers, cost one commit, not N. The caller that finds no write under way runs the transaction itself, on its
/// own thread: Microsoft.Data.Sqlite is synchronous underneath, so a lone caller (one delivery slot) writes without
/// handing anything to another thread, and the others wait without holding a thread. Each caller's work is its own:
/// when one fails with a bug (a constraint, an SQL error) the round is rolled back and each work runs again alone,
/// so only that caller sees the failure; when the file fails (full, locked, damaged) every caller of the round does.</para>
/// <para>Reads go through a second connection, so a dashboard or an API read never waits behind the writes (WAL lets
/// readers run beside the one writer) and never delays them.</para>
/// </remarks>
public sealed class SqliteDatabase : IDisposable
{
    // Other processes hold the write lock for one short transaction at a time; waiting this long for it means
    // something is stuck, and failing says so.
    private const int BusyTimeoutSeconds = 5;

    // How long a deferred write may wait for a transaction to ride in before it gets one of its own.
    private static readonly TimeSpan DeferredWait = TimeSpan.FromMilliseconds(100);

    private readonly string _connectionString;
    private readonly object _sync = new();
    private readonly Lock _readLock = new();
    private readonly List<Schema> _schemas = [];
    private List<Write> _pending = [];
    private List<Action<SqliteSession>> _deferred = [];
    private readonly Timer _flush;
    private bool _flushArmed;
    private bool _flushRequested;
    private bool _writing;
    private bool _disposed;
    private int _schemasApplied;
    private SqliteSession? _writer;
    private SqliteSession? _reader;
    private Durability _synchronous;
    private StoreUnavailableException? _damaged;

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
        _flush = new Timer(static state => ((SqliteDatabase)state!).FlushDeferred(), this, Timeout.Infinite, Timeout.Infinite);
    }

    public string Path { get; }

    /// <summary>Runs <paramref name="work"/> in a write transaction, with whatever other writes are waiting.
    /// <see cref="Durability.Durable"/> fsyncs the commit; <see cref="Durability.Deferred"/> survives a crash of the
    /// process but may be lost with the machine's power, until the next durable commit (which fsyncs everything
    /// before it too). <paramref name="work"/> may run more than once (see the remarks): it must only read and write
    /// through the session, and return what it found.</summary>
    public Task<T> WriteAsync<T>(Durability durability, Func<SqliteSession, T> work, CancellationToken cancellationToken) =>
        WriteAsync(durability, work, afterDeferred: false, cancellationToken);

    /// <summary>The same, with the deferred writes done first in the same transaction when
    /// <paramref name="afterDeferred"/> (a work that must see them, as an enqueue must see a completed copy gone).</summary>
    public Task<T> WriteAsync<T>(Durability durability, Func<SqliteSession, T> work, bool afterDeferred, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(work);
        // An async lambda would compile as a work returning its task, and run outside the transaction.
        if (typeof(Task).IsAssignableFrom(typeof(T)))
            throw new ArgumentException("the work must be synchronous (Microsoft.Data.Sqlite is, underneath)", nameof(work));
        // Cancellation is honoured until the work starts, never inside a transaction: these take milliseconds,
        // and a completion rolled back at shutdown would mean a duplicate email.
        if (cancellationToken.IsCancellationRequested)
            return Task.FromCanceled<T>(cancellationToken);
        if (Volatile.Read(ref _damaged) is { } damaged)
            return Task.FromException<T>(damaged);
        var write = new Write<T>(durability, work, cancellationToken);
        bool lead;
        lock (_sync)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _flushRequested |= afterDeferred && _deferred.Count > 0;
            _pending.Add(write);
            lead = !_writing;
            _writing = true;
        }
        if (lead)
            WriteRound();
        return write.Task;
    }

    /// <summary>Runs <paramref name="work"/> in a later write transaction, without waiting for it: for
    /// bookkeeping whose loss in a crash costs nothing (a completed message that is not deleted comes back, is found
    /// sent, and is completed again) or little (a count for the dashboard). A delivery slot then pays one commit per
    /// message, not one more per batch. They are written together, at most <see cref="DeferredWait"/> after the first
    /// of them, and before any read or stop of this process. A work that meets a file it cannot write waits for the
    /// next time again.</summary>
    public void Defer(Action<SqliteSession> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        bool arm;
        lock (_sync)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _deferred.Add(work);
            arm = !_flushArmed;
            _flushArmed = true;
        }
        if (arm)
            _flush.Change(DeferredWait, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Runs <paramref name="work"/> on the reading connection: it sees what was committed when it starts.</summary>
    public Task<T> ReadAsync<T>(Func<SqliteSession, T> work, CancellationToken cancellationToken) =>
        ReadAsync(work, afterDeferred: true, cancellationToken);

    /// <summary>The same; with <paramref name="afterDeferred"/> false for a read that cannot concern the deferred
    /// writes (queue completions, throughput counts), which then need not be written first: on the delivery path that
    /// would be one more commit per message.</summary>
    public async Task<T> ReadAsync<T>(Func<SqliteSession, T> work, bool afterDeferred, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(work);
        cancellationToken.ThrowIfCancellationRequested();
        if (Volatile.Read(ref _damaged) is { } damaged)
            throw damaged;
        // The tables exist before anyone reads them: the writer creates them, in an empty round if need be; and a read
        // sees the deferred writes done.
        if (Volatile.Read(ref _schemasApplied) < SchemaCount() || (afterDeferred && RequestFlush()))
            await WriteAsync(Durability.Deferred, _ => 0, cancellationToken);
        lock (_readLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            try
            {
                _reader ??= new SqliteSession(Open());
                return work(_reader);
            }
            catch (Exception error) when (IsUnavailable(error))
            {
                // A reading connection that failed may hold a stale view of a file that was replaced: start afresh.
                _reader?.Dispose();
                _reader = null;
                throw Unavailable(error);
            }
        }
    }

    /// <summary>Registers tables and indexes (idempotent <c>CREATE … IF NOT EXISTS</c> statements) to create before
    /// the next operation; called by each user of the file when it is built, so no one touches a missing table.
    /// <paramref name="upgrade"/> runs first, in the same transaction, to bring a file an older ion wrote up to date.</summary>
    public void AddSchema(string create, Action<SqliteCommand>? upgrade = null)
    {
        lock (_schemas)
        {
            if (!_schemas.Exists(s => s.Create == create))
                _schemas.Add(new Schema(create, upgrade));
        }
    }

    /// <summary>The columns <paramref name="table"/> has (none when it does not exist yet), for upgrades.</summary>
    public static HashSet<string> Columns(SqliteCommand command, string table)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.CommandText = $"SELECT name FROM pragma_table_info('{table}')";
        HashSet<string> columns = new(StringComparer.OrdinalIgnoreCase);
        using var reader = command.ExecuteReader();
        while (reader.Read())
            columns.Add(reader.GetString(0));
        return columns;
    }

    public void Dispose()
    {
        _flush.Dispose();
        if (RequestFlush())
        {
            try
            {
                WriteAsync(Durability.Deferred, _ => 0, CancellationToken.None).GetAwaiter().GetResult();
            }
            catch (Exception error) when (error is StoreUnavailableException or ObjectDisposedException)
            {
                // What could not be written is bookkeeping a restart repeats (see Defer).
            }
        }
        lock (_sync)
        {
            _disposed = true;
            // A round under way finishes first instead of losing its connection.
            while (_writing)
                Monitor.Wait(_sync);
            _writer?.Dispose();
            _writer = null;
        }
        lock (_readLock)
        {
            _reader?.Dispose();
            _reader = null;
        }
    }

    /// <summary>Writes everything pending in one transaction. Whoever finds more pending afterwards hands the next round
    /// to the thread pool rather than writing it too: its own caller has been answered, and should not wait for others'.</summary>
    private void WriteRound()
    {
        List<Write> round;
        List<Action<SqliteSession>> deferred = [];
        lock (_sync)
        {
            round = _pending;
            _pending = [];
            // Deferred writes ride along only when asked for (a read, a stop, or the timer): in every round they would
            // add their pages to each delivery's commit; together they cost one commit per DeferredWait.
            if (_flushRequested)
                (deferred, _deferred, _flushRequested) = (_deferred, [], false);
        }
        round.RemoveAll(write => write.CancelIfRequested());
        if (deferred.Count > 0)
            round.Insert(0, new DeferredWrite(this, deferred));
        if (round.Count > 0)
            Run(round);
        var (arm, more) = (false, true);
        lock (_sync)
        {
            if (_pending.Count == 0 || _disposed)
            {
                more = false;
                foreach (var left in _pending)
                    left.Fail(new ObjectDisposedException(nameof(SqliteDatabase)));
                _pending.Clear();
                _writing = false;
                arm = _deferred.Count > 0 && !_flushArmed && !_disposed;
                _flushArmed |= arm;
                Monitor.PulseAll(_sync);
            }
        }
        if (arm)
            _flush.Change(DeferredWait, Timeout.InfiniteTimeSpan);
        if (more)
            ThreadPool.UnsafeQueueUserWorkItem(static database => database.WriteRound(), this, preferLocal: false);
    }

    /// <summary>Asks the next round to take the deferred writes along; false when there are none.</summary>
    private bool RequestFlush()
    {
        lock (_sync)
        {
            _flushRequested |= _deferred.Count > 0;
            return _deferred.Count > 0;
        }
    }

    /// <summary>The timer's round for deferred writes that no other transaction took along.</summary>
    private void FlushDeferred()
    {
        lock (_sync)
        {
            _flushArmed = false;
            if (_disposed || _deferred.Count == 0)
                return;
            _flushRequested = true;
        }
        // A failure is the deferred writes' own: they wait for the next transaction again.
        _ = WriteAsync(Durability.Deferred, _ => 0, CancellationToken.None).ContinueWith(
            static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    private void Run(List<Write> round)
    {
        try
        {
            _writer ??= new SqliteSession(Open());
            ApplySchemas(_writer.Connection);
            if (!TryCommit(round))
            {
                // Someone's work failed by itself: each goes again alone, so the failure stays with its own caller.
                foreach (var write in round)
                    TryCommit([write]);
            }
        }
        catch (Exception error) when (IsUnavailable(error))
        {
            var unavailable = Unavailable(error);
            foreach (var write in round)
                write.Fail(unavailable);
        }
        catch (Exception error)
        {
            foreach (var write in round)
                write.Fail(error);
        }
    }

    /// <summary>One transaction for <paramref name="writes"/>. True when it committed (each write is then answered);
    /// false when a work failed by itself (the transaction rolled back; a lone write is answered with its error).
    /// What the file does wrong is thrown.</summary>
    private bool TryCommit(List<Write> writes)
    {
        var session = _writer!;
        var durability = writes.Exists(w => w.Durability == Durability.Durable) ? Durability.Durable : Durability.Deferred;
        if (_synchronous != durability)
        {
            using var pragma = session.Connection.CreateCommand();
            pragma.CommandText = durability == Durability.Durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
            pragma.ExecuteNonQuery();
            _synchronous = durability;
        }
        // BEGIN IMMEDIATE takes the write lock up front (waiting on busy_timeout), so a transaction never reads under
        // a snapshot and then fails to upgrade because another writer went first.
        using var transaction = session.Connection.BeginTransaction(deferred: false);
        session.Transaction = transaction;
        try
        {
            foreach (var write in writes)
            {
                try
                {
                    write.Run(session);
                }
                catch (Exception error) when (!IsUnavailable(error))
                {
                    transaction.Rollback();
                    if (writes.Count == 1)
                        write.Fail(error);
                    return false;
                }
            }
            transaction.Commit();
        }
        finally
        {
            session.Transaction = null;
        }
        foreach (var write in writes)
            write.Answer();
        return true;
    }

    /// <summary>The core's exception for what the file did. A damaged file stays damaged: from the first sign of it
    /// every operation of this process fails at once with the same error, so delivery stops instead of sending
    /// messages whose outcome cannot be recorded, and health says why until an operator repairs the file.</summary>
    private StoreUnavailableException Unavailable(Exception error)
    {
        var code = (error as SqliteException)?.SqliteErrorCode;
        if (code is Corrupt or NotADatabase)
        {
            var damaged = new StoreUnavailableException(
                $"the database {Path} is damaged ({error.Message}): stop ion and run `ion store recover` (README, \"A damaged database file\")",
                error, StoreFault.Damaged);
            return Interlocked.CompareExchange(ref _damaged, damaged, null) ?? damaged;
        }
        return code == Full
            ? new StoreUnavailableException($"the database {Path} cannot be written: storage full ({error.Message})", error, StoreFault.Full)
            : new StoreUnavailableException($"the database {Path} is unavailable: {error.Message}", error);
    }

    private const int Full = 13;
    private const int Corrupt = 11;
    private const int NotADatabase = 26;

    /// <summary>What the file or the machine did, not what ion asked: worth asking again later. Anything else
    /// (a constraint or SQL error) is a bug and stays as it is.</summary>
    private static bool IsUnavailable(Exception error) => error switch
    {
        // BUSY, LOCKED, NOMEM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, NOTADB
        SqliteException e => e.SqliteErrorCode is 5 or 6 or 7 or 8 or 10 or 11 or 13 or 14 or 15 or 26,
        IOException or UnauthorizedAccessException => true,
        _ => false,
    };

    private int SchemaCount()
    {
        lock (_schemas)
            return _schemas.Count;
    }

    private void ApplySchemas(SqliteConnection connection)
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
            schema.Upgrade?.Invoke(create);
            create.CommandText = schema.Create;
            create.ExecuteNonQuery();
        }
        transaction.Commit();
        Volatile.Write(ref _schemasApplied, _schemasApplied + added.Length);
    }

    private SqliteConnection Open()
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        var connection = new SqliteConnection(_connectionString);
        try
        {
            connection.Open();
            using var setup = connection.CreateCommand();
            // busy_timeout first, so switching to WAL waits for another process doing the same. WAL lets readers
            // run beside the one writer.
            setup.CommandText = $"""
                PRAGMA busy_timeout = {BusyTimeoutSeconds * 1000};
                PRAGMA journal_mode = WAL;
                PRAGMA synchronous = FULL;
                """;
            setup.ExecuteNonQuery();
            _synchronous = Durability.Durable;
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private sealed record Schema(string Create, Action<SqliteCommand>? Upgrade);

    /// <summary>A caller's write: its work, and the answer it waits for.</summary>
    private abstract class Write(Durability durability, CancellationToken cancellationToken)
    {
        public Durability Durability { get; } = durability;

        protected CancellationToken CancellationToken { get; } = cancellationToken;

        /// <summary>Runs the work in the open transaction and keeps its result for <see cref="Answer"/>.</summary>
        public abstract void Run(SqliteSession session);

        /// <summary>Gives the caller the result once the transaction committed.</summary>
        public abstract void Answer();

        public abstract void Fail(Exception error);

        /// <summary>True (and the caller told) when the caller gave up before the work started.</summary>
        public abstract bool CancelIfRequested();
    }

    /// <summary>Deferred writes, riding in a round: nobody waits for them, and when the file fails they wait for the
    /// next round again. One that fails by itself (a bug) is dropped, since it would fail every round.</summary>
    private sealed class DeferredWrite(SqliteDatabase database, List<Action<SqliteSession>> works) : Write(Durability.Deferred, CancellationToken.None)
    {
        public override void Run(SqliteSession session)
        {
            foreach (var work in works)
                work(session);
        }

        public override void Answer()
        {
        }

        public override void Fail(Exception error)
        {
            if (error is not StoreUnavailableException)
                return;
            lock (database._sync)
            {
                if (!database._disposed)
                    database._deferred.InsertRange(0, works);
            }
        }

        public override bool CancelIfRequested() => false;
    }

    private sealed class Write<T>(Durability durability, Func<SqliteSession, T> work, CancellationToken cancellationToken)
        : Write(durability, cancellationToken)
    {
        // Answered off the writing thread: a caller's continuation must not run inside another caller's round.
        private readonly TaskCompletionSource<T> _answer = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;

        public Task<T> Task => _answer.Task;

        public override void Run(SqliteSession session) => _result = work(session);

        public override void Answer() => _answer.TrySetResult(_result!);

        public override void Fail(Exception error) => _answer.TrySetException(error);

        public override bool CancelIfRequested() => CancellationToken.IsCancellationRequested && _answer.TrySetCanceled(CancellationToken);
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
/// A connection as an operation holding the file sees it: <see cref="Command"/> gives each SQL text's command,
/// prepared once and kept, inside the operation's transaction. Compiling every statement anew showed in every profile
/// of ion (<c>sqlite3RunParser</c>); kept, SQLite compiles each one once per connection.
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
