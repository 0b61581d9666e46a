using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Ion.Log;
using Ion.Queues;
using Microsoft.Data.Sqlite;

namespace Ion.Stores.Sqlite;

/// <summary>The one-machine <see cref="IMessageQueue"/>: an SQLite file with SQS semantics, safe to share
/// between several instances and processes.</summary>
/// <remarks>
/// Beyond SQS, two things only a file on one machine can do: one waiting or in-flight message per id (a second
/// enqueue of the id adds nothing), and knowing at once that the process holding messages is gone. Each receiving
/// instance holds a lock file (<see cref="HolderLock"/>) for as long as it lives, and marks the messages it receives
/// with its name; the operating system drops the lock when the process dies, however it dies, and the next receive
/// by anyone gives that holder's messages back at once instead of after the visibility timeout.
/// </remarks>
public sealed class SqliteQueue : IMessageQueue, IDisposable
{
    // queue: one row per message waiting or in flight, at most one per message_id. seq is the rowid, so the
    //   index on visible_at holds (visible_at, seq) and serves "visible now, oldest first" without touching the
    //   table. receipt is the token of the current receive, holder the instance that made it (both NULL when
    //   nobody holds the message); the handle given out is "seq:receipt", so completing finds the row by primary
    //   key and a stale handle simply matches nothing (even if SQLite reuses a deleted seq, which it may without
    //   AUTOINCREMENT: the new row's receipt is a different random token).
    // dead_letters: messages that will not be delivered without a redrive. Its own seq because a copy of an id may
    //   join one already there; indexed by dead_at for listing and by message_id for redrive by id.
    // Times are unix milliseconds from the injected TimeProvider.
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS queue (
            seq INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL,
            body TEXT NOT NULL,
            enqueued_at INTEGER NOT NULL,
            visible_at INTEGER NOT NULL,
            receive_count INTEGER NOT NULL,
            receipt TEXT,
            holder TEXT
        );
        CREATE INDEX IF NOT EXISTS queue_visible_at ON queue (visible_at);
        CREATE UNIQUE INDEX IF NOT EXISTS queue_message_id ON queue (message_id);
        CREATE INDEX IF NOT EXISTS queue_holder ON queue (holder) WHERE holder IS NOT NULL;
        CREATE TABLE IF NOT EXISTS dead_letters (
            seq INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL,
            body TEXT NOT NULL,
            reason TEXT NOT NULL,
            failure_class TEXT,
            attempts INTEGER NOT NULL,
            enqueued_at INTEGER NOT NULL,
            dead_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS dead_letters_dead_at ON dead_letters (dead_at);
        CREATE INDEX IF NOT EXISTS dead_letters_message_id ON dead_letters (message_id);
        """;

    // One copy per id waiting or in flight: a second enqueue (or a redrive) of an id already there adds nothing. A
    // scheduled message is hidden until its time ($visible_at), as a retry is until its own: receives never see it
    // before, and a receiver with nothing visible waits its long poll, however far off that time is.
    private const string InsertUnlessQueued = """
        INSERT INTO queue (message_id, body, enqueued_at, visible_at, receive_count, receipt, holder)
        VALUES ($id, $body, $now, max($now, coalesce($visible_at, $now)), 0, NULL, NULL)
        ON CONFLICT (message_id) DO NOTHING
        """;

    // How often a receive looks for holders that died. Each look costs one indexed query and one lock-file probe
    // per other holder, so once a second costs nothing and gives a dead holder's messages back within about a second.
    private static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(1);

    private readonly SqliteDatabase _database;
    private readonly bool _ownsDatabase;
    private readonly long _visibilityTimeoutMs;
    private readonly TimeSpan _receiveWaitTime;
    private readonly TimeProvider _time;
    private readonly HolderLock _holder;
    private long _nextSweep = long.MinValue;

    // Completed (and replaced) whenever this instance makes messages visible, so a receiver waiting in
    // ReceiveAsync wakes at once; messages from other processes are found at the next look.
    private TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);


    /// <summary>A queue in a database file shared with the delivery log (ion serve).</summary>
    public SqliteQueue(SqliteDatabase database, SqliteQueueOptions options, TimeProvider time)
        : this(database, ownsDatabase: false, options, time)
    {
    }

    private SqliteQueue(SqliteDatabase database, bool ownsDatabase, SqliteQueueOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.VisibilityTimeout, TimeSpan.Zero);
        _database = database;
        _database.AddSchema(Schema, Upgrade);
        _ownsDatabase = ownsDatabase;
        _visibilityTimeoutMs = Milliseconds(options.VisibilityTimeout);
        _receiveWaitTime = options.ReceiveWaitTime;
        _time = time;
        _holder = new HolderLock(database.Path + "-holders");
    }

    /// <summary>A queue with a file of its own; disposing the queue closes the file.</summary>
    public static SqliteQueue Open(string path, SqliteQueueOptions options, TimeProvider time) =>
        new(new SqliteDatabase(path), ownsDatabase: true, options, time);

    /// <summary>A file from before the queue knew holders: it counted attempts itself (the delivery log does now)
    /// and allowed an id twice.</summary>
    private static void Upgrade(SqliteCommand command)
    {
        var columns = SqliteDatabase.Columns(command, "queue");
        if (columns.Count == 0)
            return;
        if (!columns.Contains("holder"))
        {
            command.CommandText = """
                ALTER TABLE queue ADD COLUMN holder TEXT;
                DELETE FROM queue WHERE seq NOT IN (SELECT min(seq) FROM queue GROUP BY message_id);
                """;
            command.ExecuteNonQuery();
        }
        if (columns.Contains("attempts"))
        {
            command.CommandText = "ALTER TABLE queue DROP COLUMN attempts";
            command.ExecuteNonQuery();
        }
        if (!(SqliteDatabase.Columns(command, "dead_letters")).Contains("failure_class"))
        {
            command.CommandText = "ALTER TABLE dead_letters ADD COLUMN failure_class TEXT";
            command.ExecuteNonQuery();
        }
    }

    public async Task<IReadOnlyList<EnqueueResult>> EnqueueAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0)
            return [];
        // Enqueues that arrive while one is being written go together in the next transaction (the database's group
        // commit): N concurrent publishers cost one fsync, not N, and none returns before its own messages are on disk.
        var results = await InsertAsync(messages);
        if (results.Where((r, i) => r == EnqueueResult.Queued && messages[i].NotBefore is null).Any())
            Arrived();
        return results;
    }

    /// <summary>All the messages are queued, or none.</summary>
    private Task<IReadOnlyList<EnqueueResult>> InsertAsync(IReadOnlyList<OutgoingMessage> messages) =>
        _database.WriteAsync<IReadOnlyList<EnqueueResult>>(Durability.Durable, session =>
        {
            var insert = session.Command(InsertUnlessQueued);
            var id = insert.Parameter("$id", SqliteType.Text);
            var body = insert.Parameter("$body", SqliteType.Text);
            var visibleAt = insert.Parameter("$visible_at", SqliteType.Integer);
            insert.Set("$now", Now());
            var results = new EnqueueResult[messages.Count];
            for (var i = 0; i < messages.Count; i++)
            {
                id.Value = messages[i].Id;
                body.Value = messages[i].Body;
                visibleAt.Value = messages[i].NotBefore is { } notBefore ? notBefore.ToUnixTimeMilliseconds() : DBNull.Value;
                results[i] = insert.ExecuteNonQuery() == 1 ? EnqueueResult.Queued : EnqueueResult.AlreadyQueued;
                // Its accepted event with it, or neither (SqliteEventOutbox).
                if (results[i] == EnqueueResult.Queued && messages[i].Events is { Count: > 0 } events)
                    SqliteEventOutbox.Insert(session, events);
            }
            return results;
        }, afterDeferred: true, CancellationToken.None);

    /// <summary>Like SQS long polling: when nothing is visible, waits up to <see cref="SqliteQueueOptions.ReceiveWaitTime"/>
    /// for messages before returning empty.</summary>
    public async Task<IReadOnlyList<QueuedMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxMessages);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxMessages, IMessageQueue.MaxReceive);

        // Taken before looking, so an enqueue between the look and the wait is not missed.
        var arrived = Volatile.Read(ref _arrived).Task;
        var taken = await TakeAsync(maxMessages, cancellationToken);
        if (taken.Count > 0 || _receiveWaitTime <= TimeSpan.Zero)
            return taken;

        using (var waiting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            await Task.WhenAny(arrived, Task.Delay(_receiveWaitTime, _time, waiting.Token));
            await waiting.CancelAsync();
        }
        cancellationToken.ThrowIfCancellationRequested();
        return await TakeAsync(maxMessages, cancellationToken);
    }

    private void Arrived() =>
        Interlocked.Exchange(ref _arrived, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private Task<IReadOnlyList<QueuedMessage>> TakeAsync(int maxMessages, CancellationToken cancellationToken)
    {
        // The lock file exists before any row names this holder, so another process never sees a row of a holder
        // whose lock it could take.
        var holder = _holder.Acquire();
        return _database.WriteAsync<IReadOnlyList<QueuedMessage>>(Durability.Deferred, session =>
        {
            var now = Now();
            Sweep(session, now, holder);
            // One token per receive is enough: the handle carries seq, so it is still unique per message.
            var receipt = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
            // Picking and hiding in one statement, under the write lock, is what keeps two receivers
            // (in this process or another) from taking the same row.
            var take = session.Command("""
                UPDATE queue
                SET visible_at = $hidden_until, receive_count = receive_count + 1, receipt = $receipt, holder = $holder
                WHERE seq IN (SELECT seq FROM queue WHERE visible_at <= $now ORDER BY visible_at, seq LIMIT $max)
                RETURNING seq, message_id, body, receive_count, enqueued_at
                """);
            take.Set("$hidden_until", now + _visibilityTimeoutMs);
            take.Set("$receipt", receipt);
            take.Set("$holder", holder);
            take.Set("$now", now);
            take.Set("$max", maxMessages);

            var received = new List<QueuedMessage>();
            using var reader = take.ExecuteReader();
            while (reader.Read())
            {
                var seq = reader.GetInt64(0);
                received.Add(new QueuedMessage(
                    Id: reader.GetString(1),
                    Body: reader.GetString(2),
                    EnqueuedAt: DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)),
                    ReceiveCount: reader.GetInt32(3),
                    QueueMessageId: seq.ToString(CultureInfo.InvariantCulture),
                    ReceiptHandle: FormatHandle(seq, receipt)));
            }
            return received;
        }, cancellationToken);
    }

    /// <summary>Gives back, visible now, the messages of holders whose process is gone (at most once a
    /// <see cref="SweepInterval"/>).</summary>
    private void Sweep(SqliteSession session, long now, string self)
    {
        if (now < Volatile.Read(ref _nextSweep))
            return;
        Volatile.Write(ref _nextSweep, now + (long)SweepInterval.TotalMilliseconds);

        var find = session.Command("SELECT DISTINCT holder FROM queue WHERE holder IS NOT NULL AND holder <> $self");
        find.Set("$self", self);
        List<string> holders = [];
        using (var reader = find.ExecuteReader())
        {
            while (reader.Read())
                holders.Add(reader.GetString(0));
        }
        foreach (var dead in holders.Where(_holder.IsGone))
        {
            var release = session.Command("UPDATE queue SET visible_at = $now, receipt = NULL, holder = NULL WHERE holder = $holder");
            release.Set("$now", now);
            release.Set("$holder", dead);
            release.ExecuteNonQuery();
        }
    }

    public Task<IReadOnlyList<bool>> KeepHiddenAsync(IReadOnlyList<QueuedMessage> messages, CancellationToken cancellationToken) =>
        UpdateHeldAsync(messages, """
            UPDATE queue SET visible_at = $visible_at
            WHERE seq = $seq AND receipt = $receipt
            """, _visibilityTimeoutMs, cancellationToken);

    public async Task ReturnAsync(IReadOnlyList<QueuedMessage> messages, TimeSpan delay, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        // Clearing the receipt makes the caller's handle stale: the message is no longer theirs. Clearing the holder
        // keeps a retry waiting for its delay from being given back early if this process dies meanwhile.
        await UpdateHeldAsync(messages, """
            UPDATE queue SET visible_at = $visible_at, receipt = NULL, holder = NULL
            WHERE seq = $seq AND receipt = $receipt
            """, Milliseconds(delay), cancellationToken);
        if (delay == TimeSpan.Zero)
            Arrived();
    }

    /// <summary>Runs <paramref name="sql"/> for each message's row, if the receipt is still current; says which were.</summary>
    private async Task<IReadOnlyList<bool>> UpdateHeldAsync(IReadOnlyList<QueuedMessage> messages, string sql, long hiddenForMs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var handles = messages.Select(ParseHandle).ToList();
        if (handles.Count == 0)
            return [];
        return await _database.WriteAsync<IReadOnlyList<bool>>(Durability.Deferred, session =>
        {
            var update = session.Command(sql);
            update.Set("$visible_at", Now() + hiddenForMs);
            var seq = update.Parameter("$seq", SqliteType.Integer);
            var receipt = update.Parameter("$receipt", SqliteType.Text);
            var current = new bool[handles.Count];
            for (var i = 0; i < handles.Count; i++)
            {
                seq.Value = handles[i].Seq;
                receipt.Value = handles[i].Receipt;
                current[i] = update.ExecuteNonQuery() == 1;
            }
            return current;
        }, cancellationToken);
    }

    /// <summary>Deletes the messages in the file's next transaction, without waiting for it (<see cref="SqliteDatabase.Defer"/>):
    /// completing is bookkeeping after the delivery log recorded the outcome, and a completion a crash loses only brings
    /// the message back to be found sent and completed again. A receive, a count or a stop in this process sees it
    /// done; another process, within a fraction of a second.</summary>
    public Task CompleteAsync(IReadOnlyList<QueuedMessage> messages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var handles = messages.Select(ParseHandle).ToList();
        if (handles.Count == 0)
            return Task.CompletedTask;
        _database.Defer(session =>
        {
            var delete = session.Command("DELETE FROM queue WHERE seq = $seq AND receipt = $receipt");
            var seq = delete.Parameter("$seq", SqliteType.Integer);
            var receipt = delete.Parameter("$receipt", SqliteType.Text);
            foreach (var handle in handles)
            {
                seq.Value = handle.Seq;
                receipt.Value = handle.Receipt;
                delete.ExecuteNonQuery();
            }
        });
        return Task.CompletedTask;
    }

    public Task DeadLetterAsync(QueuedMessage message, DeadLetterNote note, CancellationToken cancellationToken)
    {
        var (seq, receipt) = ParseHandle(message);
        ArgumentNullException.ThrowIfNull(note);

        return _database.WriteAsync(Durability.Deferred, session =>
        {
            // Body and id come from the row, not the caller's copy: the row is the record.
            var move = session.Command("""
                INSERT INTO dead_letters (message_id, body, reason, failure_class, attempts, enqueued_at, dead_at)
                SELECT message_id, body, $reason, $class, $attempts, enqueued_at, $now
                FROM queue WHERE seq = $seq AND receipt = $receipt;
                DELETE FROM queue WHERE seq = $seq AND receipt = $receipt;
                """);
            move.Set("$reason", note.Reason);
            move.Set("$class", StoredNames.Of(note.Class));
            move.Set("$attempts", note.Attempts);
            move.Set("$now", Now());
            move.Set("$seq", seq);
            move.Set("$receipt", receipt);
            return move.ExecuteNonQuery();
        }, cancellationToken);
    }

    public async Task<IReadOnlyList<string>> RedriveAsync(IReadOnlyCollection<string>? ids, CancellationToken cancellationToken)
    {
        if (ids is { Count: 0 })
            return [];

        // The ids travel as one JSON array parameter, so any number of them fits in one statement.
        var filter = ids is null ? "" : "WHERE message_id IN (SELECT value FROM json_each($ids))";
        var json = ids is null ? null : JsonSerializer.Serialize([.. ids], SqliteJson.Default.ListString);
        var redriven = await _database.WriteAsync<IReadOnlyList<string>>(Durability.Deferred, session =>
        {
            // One transaction moves and deletes, so two redrives at once move each message once. A dead letter whose id
            // is waiting or in flight again already (another copy) just leaves the dead letters: the live copy stands
            // for it.
            var move = session.Command($"""
                DELETE FROM dead_letters {filter}
                RETURNING message_id, body
                """);
            if (json is not null)
                move.Set("$ids", json);
            var moved = new List<(string Id, string Body)>();
            using (var reader = move.ExecuteReader())
            {
                while (reader.Read())
                    moved.Add((reader.GetString(0), reader.GetString(1)));
            }

            var insert = session.Command(InsertUnlessQueued);
            var id = insert.Parameter("$id", SqliteType.Text);
            var body = insert.Parameter("$body", SqliteType.Text);
            insert.Set("$now", Now());
            insert.Set("$visible_at", null);
            foreach (var message in moved)
            {
                id.Value = message.Id;
                body.Value = message.Body;
                insert.ExecuteNonQuery();
            }
            return [.. moved.Select(m => m.Id).Distinct(StringComparer.Ordinal)];
        }, afterDeferred: true, cancellationToken);
        if (redriven.Count > 0)
            Arrived();
        return redriven;
    }

    /// <summary>None: a row takes what <c>Ion:MaxMessageBytes</c> allows.</summary>
    public MessageSizeLimit? SizeLimit => null;

    public Task<QueueCounts> CountAsync(CancellationToken cancellationToken) =>
        _database.ReadAsync(session =>
        {
            // One statement reads one snapshot, so the numbers agree with each other. The oldest by seq (the rowid, in
            // the order rows were queued) is read without a scan; a redriven message counts from its redrive.
            var count = session.Command("""
                SELECT (SELECT count(*) FROM queue WHERE visible_at <= $now),
                       (SELECT count(*) FROM queue WHERE visible_at > $now),
                       (SELECT count(*) FROM dead_letters),
                       (SELECT enqueued_at FROM queue ORDER BY seq LIMIT 1)
                """);
            count.Set("$now", Now());
            using var reader = count.ExecuteReader();
            reader.Read();
            return new QueueCounts(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2),
                reader.IsDBNull(3) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)));
        }, cancellationToken);

    public void Dispose()
    {
        _holder.Dispose();
        if (_ownsDatabase)
            _database.Dispose();
    }

    private long Now() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private static long Milliseconds(TimeSpan span) => span.Ticks / TimeSpan.TicksPerMillisecond;

    private static string FormatHandle(long seq, string receipt) =>
        string.Create(CultureInfo.InvariantCulture, $"{seq}:{receipt}");

    private static (long Seq, string Receipt) ParseHandle(QueuedMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var handle = message.ReceiptHandle;
        var colon = handle.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || !long.TryParse(handle.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
            throw new ArgumentException($"'{handle}' is not a receipt handle of an SQLite queue.", nameof(message));
        return (seq, handle[(colon + 1)..]);
    }
}
