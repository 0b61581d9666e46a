using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Ion.Queues;
using Microsoft.Data.Sqlite;

namespace Ion.Stores.Sqlite;

/// <summary>The one-machine <see cref="IMessageQueue"/>: an SQLite file with SQS semantics, safe to share
/// between several instances and processes.</summary>
public sealed class SqliteQueue : IMessageQueue, IDisposable
{
    // queue: one row per message waiting or in flight. seq is the rowid, so the index on visible_at
    //   holds (visible_at, seq) and serves "visible now, oldest first" without touching the table.
    //   message_id is the client's id and is not unique: a client may publish the same id twice and
    //   delivery, not the queue, dedupes. receipt is the token of the current receive (NULL when
    //   nobody holds the message); the handle given out is "seq:receipt", so completing finds the
    //   row by primary key and a stale handle simply matches nothing (even if SQLite reuses a deleted
    //   seq, which it may without AUTOINCREMENT: the new row's receipt is a different random token).
    // dead_letters: messages that will not be delivered without a redrive. Its own seq because ids
    //   repeat; indexed by dead_at for listing and by message_id for redrive by id.
    // Times are unix milliseconds from the injected TimeProvider.
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS queue (
            seq INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL,
            body TEXT NOT NULL,
            enqueued_at INTEGER NOT NULL,
            visible_at INTEGER NOT NULL,
            receive_count INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            receipt TEXT
        );
        CREATE INDEX IF NOT EXISTS queue_visible_at ON queue (visible_at);
        CREATE TABLE IF NOT EXISTS dead_letters (
            seq INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL,
            body TEXT NOT NULL,
            reason TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            enqueued_at INTEGER NOT NULL,
            dead_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS dead_letters_dead_at ON dead_letters (dead_at);
        CREATE INDEX IF NOT EXISTS dead_letters_message_id ON dead_letters (message_id);
        """;

    private readonly SqliteDatabase _database;
    private readonly bool _ownsDatabase;
    private readonly long _visibilityTimeoutMs;
    private readonly TimeSpan _receiveWaitTime;
    private readonly TimeProvider _time;

    // Completed (and replaced) whenever this instance makes messages visible, so a receiver waiting in
    // ReceiveAsync wakes at once; messages from other processes are found at the next look.
    private TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Enqueues that arrive while one is being written go together in the next transaction: N concurrent
    // publishers cost one fsync, not N, and none returns before its own messages are on disk.
    private readonly GroupCommit<OutgoingMessage> _enqueues;

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
        _database.AddSchema(Schema);
        _enqueues = new GroupCommit<OutgoingMessage>(InsertAsync);
        _ownsDatabase = ownsDatabase;
        _visibilityTimeoutMs = Milliseconds(options.VisibilityTimeout);
        _receiveWaitTime = options.ReceiveWaitTime;
        _time = time;
    }

    /// <summary>A queue with a file of its own; disposing the queue closes the file.</summary>
    public static SqliteQueue Open(string path, SqliteQueueOptions options, TimeProvider time) =>
        new(new SqliteDatabase(path), ownsDatabase: true, options, time);

    public async Task EnqueueAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0)
            return;
        await _enqueues.AddAsync(messages);
        Arrived();
    }

    /// <summary>One transaction for all the messages of a round: all of them are queued, or none.</summary>
    private Task<int> InsertAsync(IReadOnlyList<OutgoingMessage> messages) =>
        _database.WriteAsync(Durability.Durable, async session =>
        {
            var insert = session.Command("""
                INSERT INTO queue (message_id, body, enqueued_at, visible_at, receive_count, attempts, receipt)
                VALUES ($id, $body, $now, $now, 0, 0, NULL)
                """);
            var id = insert.Parameter("$id", SqliteType.Text);
            var body = insert.Parameter("$body", SqliteType.Text);
            insert.Set("$now", Now());
            foreach (var message in messages)
            {
                id.Value = message.Id;
                body.Value = message.Body;
                await insert.ExecuteNonQueryAsync(CancellationToken.None);
            }
            return 0;
        }, CancellationToken.None);

    /// <summary>Like SQS long polling: when nothing is visible, waits up to <see cref="SqliteQueueOptions.ReceiveWaitTime"/>
    /// for messages before returning empty.</summary>
    public async Task<IReadOnlyList<QueuedMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxMessages);

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
        return _database.WriteAsync<IReadOnlyList<QueuedMessage>>(Durability.Deferred, async session =>
        {
            var now = Now();
            // One token per receive is enough: the handle carries seq, so it is still unique per message.
            var receipt = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
            // Picking and hiding in one statement, under the write lock, is what keeps two receivers
            // (in this process or another) from taking the same row.
            var take = session.Command("""
                UPDATE queue
                SET visible_at = $hidden_until, receive_count = receive_count + 1, receipt = $receipt
                WHERE seq IN (SELECT seq FROM queue WHERE visible_at <= $now ORDER BY visible_at, seq LIMIT $max)
                RETURNING seq, message_id, body, attempts, receive_count, enqueued_at
                """);
            take.Set("$hidden_until", now + _visibilityTimeoutMs);
            take.Set("$receipt", receipt);
            take.Set("$now", now);
            take.Set("$max", maxMessages);

            var received = new List<QueuedMessage>();
            using var reader = await take.ExecuteReaderAsync(CancellationToken.None);
            while (await reader.ReadAsync(CancellationToken.None))
            {
                received.Add(new QueuedMessage(
                    Id: reader.GetString(1),
                    Body: reader.GetString(2),
                    Attempts: reader.GetInt32(3),
                    ReceiveCount: reader.GetInt32(4),
                    EnqueuedAt: DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)),
                    ReceiptHandle: FormatHandle(reader.GetInt64(0), receipt)));
            }
            return received;
        }, cancellationToken);
    }

    public Task CompleteAsync(IReadOnlyList<QueuedMessage> messages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var handles = messages.Select(ParseHandle).ToList();
        if (handles.Count == 0)
            return Task.CompletedTask;
        return _database.WriteAsync(Durability.Deferred, async session =>
        {
            var delete = session.Command("DELETE FROM queue WHERE seq = $seq AND receipt = $receipt");
            var seq = delete.Parameter("$seq", SqliteType.Integer);
            var receipt = delete.Parameter("$receipt", SqliteType.Text);
            var deleted = 0;
            foreach (var handle in handles)
            {
                seq.Value = handle.Seq;
                receipt.Value = handle.Receipt;
                deleted += await delete.ExecuteNonQueryAsync(CancellationToken.None);
            }
            return deleted;
        }, cancellationToken);
    }

    public Task RetryLaterAsync(QueuedMessage message, TimeSpan delay, CancellationToken cancellationToken) =>
        HideAsync(message, delay, countsAttempt: true, cancellationToken);

    public Task ReleaseAsync(QueuedMessage message, TimeSpan delay, CancellationToken cancellationToken) =>
        HideAsync(message, delay, countsAttempt: false, cancellationToken);

    private Task<int> HideAsync(QueuedMessage message, TimeSpan delay, bool countsAttempt, CancellationToken cancellationToken)
    {
        var (seq, receipt) = ParseHandle(message);
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        var delayMs = Milliseconds(delay);

        return _database.WriteAsync(Durability.Deferred, async session =>
        {
            // Clearing the receipt makes the caller's handle stale: the message is no longer theirs.
            var hide = session.Command("""
                UPDATE queue
                SET visible_at = $visible_at, attempts = attempts + $counted, receipt = NULL
                WHERE seq = $seq AND receipt = $receipt
                """);
            hide.Set("$visible_at", Now() + delayMs);
            hide.Set("$counted", countsAttempt ? 1 : 0);
            hide.Set("$seq", seq);
            hide.Set("$receipt", receipt);
            return await hide.ExecuteNonQueryAsync(CancellationToken.None);
        }, cancellationToken);
    }

    public Task DeadLetterAsync(QueuedMessage message, string reason, CancellationToken cancellationToken)
    {
        var (seq, receipt) = ParseHandle(message);
        ArgumentNullException.ThrowIfNull(reason);

        return _database.WriteAsync(Durability.Deferred, async session =>
        {
            // Body, id and attempts come from the row, not the caller's copy: the row is the record.
            var move = session.Command("""
                INSERT INTO dead_letters (message_id, body, reason, attempts, enqueued_at, dead_at)
                SELECT message_id, body, $reason, attempts + 1, enqueued_at, $now
                FROM queue WHERE seq = $seq AND receipt = $receipt;
                DELETE FROM queue WHERE seq = $seq AND receipt = $receipt;
                """);
            move.Set("$reason", reason);
            move.Set("$now", Now());
            move.Set("$seq", seq);
            move.Set("$receipt", receipt);
            return await move.ExecuteNonQueryAsync(CancellationToken.None);
        }, cancellationToken);
    }

    public Task<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);

        return _database.ReadAsync<IReadOnlyList<DeadLetter>>(async session =>
        {
            var list = session.Command("""
                SELECT message_id, body, reason, attempts, enqueued_at, dead_at
                FROM dead_letters ORDER BY dead_at, seq LIMIT $limit
                """);
            list.Set("$limit", limit);

            var dead = new List<DeadLetter>();
            using var reader = await list.ExecuteReaderAsync(CancellationToken.None);
            while (await reader.ReadAsync(CancellationToken.None))
            {
                dead.Add(new DeadLetter(
                    Id: reader.GetString(0),
                    Body: reader.GetString(1),
                    Reason: reader.GetString(2),
                    Attempts: reader.GetInt32(3),
                    EnqueuedAt: DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)),
                    DeadAt: DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5))));
            }
            return dead;
        }, cancellationToken);
    }

    public async Task<IReadOnlyList<string>> RedriveAsync(IReadOnlyCollection<string>? ids, CancellationToken cancellationToken)
    {
        if (ids is { Count: 0 })
            return [];

        // The ids travel as one JSON array parameter, so any number of them fits in one statement.
        var filter = ids is null ? "" : "WHERE message_id IN (SELECT value FROM json_each($ids))";
        var json = ids is null ? null : JsonSerializer.Serialize(ids);
        var redriven = await _database.WriteAsync<IReadOnlyList<string>>(Durability.Deferred, async session =>
        {
            // enqueued_at is kept: it is when the client published the message, and the age of the
            // oldest message should not be reset by a redrive.
            var move = session.Command($"""
                INSERT INTO queue (message_id, body, enqueued_at, visible_at, receive_count, attempts, receipt)
                SELECT message_id, body, enqueued_at, $now, 0, 0, NULL FROM dead_letters {filter} ORDER BY seq
                RETURNING message_id
                """);
            move.Set("$now", Now());
            if (json is not null)
                move.Set("$ids", json);
            var moved = new List<string>();
            using (var reader = await move.ExecuteReaderAsync(CancellationToken.None))
            {
                while (await reader.ReadAsync(CancellationToken.None))
                    moved.Add(reader.GetString(0));
            }

            var delete = session.Command($"DELETE FROM dead_letters {filter}");
            if (json is not null)
                delete.Set("$ids", json);
            await delete.ExecuteNonQueryAsync(CancellationToken.None);
            return moved;
        }, cancellationToken);
        if (redriven.Count > 0)
            Arrived();
        return redriven;
    }

    public Task<QueueCounts> CountAsync(CancellationToken cancellationToken) =>
        _database.ReadAsync(async session =>
        {
            // One statement reads one snapshot, so the three numbers agree with each other.
            var count = session.Command("""
                SELECT (SELECT count(*) FROM queue WHERE visible_at <= $now),
                       (SELECT count(*) FROM queue WHERE visible_at > $now),
                       (SELECT count(*) FROM dead_letters)
                """);
            count.Set("$now", Now());
            using var reader = await count.ExecuteReaderAsync(CancellationToken.None);
            await reader.ReadAsync(CancellationToken.None);
            return new QueueCounts(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
        }, cancellationToken);

    public void Dispose()
    {
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
