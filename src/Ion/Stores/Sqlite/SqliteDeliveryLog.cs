using System.Text.Json;
using Ion.Log;
using Microsoft.Data.Sqlite;

namespace Ion.Stores.Sqlite;

/// <summary>
/// Every attempt and the current state of each message id, in the same SQLite file as the queue. The queue is the
/// durable hand-off; the log is the record people and the idempotency check read.
/// </summary>
/// <remarks>
/// Writes are <see cref="Durability.Deferred"/>: they survive a crash of ion, and the next durable commit (every
/// publish) fsyncs them. Losing the newest of them with the machine's power means a message may be sent again
/// (at-least-once), never that a message is lost.
/// </remarks>
public sealed class SqliteDeliveryLog : IDeliveryLog
{
    // messages: one row per message id (state, times, last reason). attempts: one row per try.
    // Times are unix milliseconds.
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS messages (
          id TEXT PRIMARY KEY,
          state TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          last_reason TEXT
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS messages_by_state ON messages (state, updated_at);
        CREATE TABLE IF NOT EXISTS attempts (
          id TEXT NOT NULL,
          at INTEGER NOT NULL,
          outcome TEXT NOT NULL,
          smtp_code INTEGER,
          reply TEXT NOT NULL,
          duration_ms INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS attempts_by_id ON attempts (id, at);
        """;

    private readonly SqliteDatabase _database;
    private readonly TimeProvider _time;
    // Concurrent publishes record their "queued" rows in one transaction.
    private readonly GroupCommit<(string Id, long At)> _queued;

    public SqliteDeliveryLog(SqliteDatabase database, TimeProvider time)
    {
        _database = database;
        _database.AddSchema(Schema);
        _time = time;
        _queued = new GroupCommit<(string Id, long At)>(WriteQueuedAsync);
    }

    /// <summary>Records messages as queued (published, or redriven) at <paramref name="enqueuedAt"/>, a time taken
    /// before they went on the queue.</summary>
    public Task RecordQueuedAsync(IReadOnlyList<string> ids, DateTimeOffset enqueuedAt, CancellationToken cancellationToken)
    {
        if (ids.Count == 0)
            return Task.CompletedTask;
        var at = enqueuedAt.ToUnixTimeMilliseconds();
        return _queued.AddAsync([.. ids.Select(id => (id, at))]);
    }

    private Task<int> WriteQueuedAsync(IReadOnlyList<(string Id, long At)> rows) =>
        _database.WriteAsync(Durability.Deferred, async session =>
        {
            // The worker may take a message and record its outcome before this runs: anything recorded since the
            // message was enqueued is newer and stays. A repeated id that was already sent stays sent: the worker
            // will not send it again.
            var command = session.Command("""
                INSERT INTO messages (id, state, created_at, updated_at) VALUES ($id, 'queued', $at, $at)
                ON CONFLICT (id) DO UPDATE SET
                  state = CASE WHEN state = 'sent' THEN 'sent' ELSE 'queued' END,
                  last_reason = CASE WHEN state = 'sent' THEN last_reason END,
                  updated_at = $at
                WHERE messages.updated_at < $at
                """);
            var id = command.Parameter("$id", SqliteType.Text);
            var at = command.Parameter("$at", SqliteType.Integer);
            foreach (var row in rows)
            {
                id.Value = row.Id;
                at.Value = row.At;
                await command.ExecuteNonQueryAsync(CancellationToken.None);
            }
            return 0;
        }, CancellationToken.None);

    /// <summary>Records attempts and the states they leave their messages in, in one transaction.</summary>
    public Task RecordAttemptsAsync(IReadOnlyList<AttemptRecord> records, CancellationToken cancellationToken)
    {
        if (records.Count == 0)
            return Task.CompletedTask;
        var now = Now();
        return _database.WriteAsync(Durability.Deferred, async session =>
        {
            var insert = session.Command("""
                INSERT INTO attempts (id, at, outcome, smtp_code, reply, duration_ms)
                VALUES ($id, $at, $outcome, $code, $reply, $duration);
                INSERT INTO messages (id, state, created_at, updated_at, last_reason) VALUES ($id, $state, $now, $now, $reason)
                ON CONFLICT (id) DO UPDATE SET state = $state, updated_at = $now, last_reason = $reason;
                """);
            var id = insert.Parameter("$id", SqliteType.Text);
            var at = insert.Parameter("$at", SqliteType.Integer);
            var outcome = insert.Parameter("$outcome", SqliteType.Text);
            var code = insert.Parameter("$code", SqliteType.Integer);
            var reply = insert.Parameter("$reply", SqliteType.Text);
            var duration = insert.Parameter("$duration", SqliteType.Integer);
            var state = insert.Parameter("$state", SqliteType.Text);
            var reason = insert.Parameter("$reason", SqliteType.Text);
            insert.Set("$now", now);
            foreach (var record in records)
            {
                id.Value = record.Id;
                at.Value = record.Attempt.At.ToUnixTimeMilliseconds();
                outcome.Value = record.Attempt.Outcome;
                code.Value = (object?)record.Attempt.SmtpCode ?? DBNull.Value;
                reply.Value = record.Attempt.Reply;
                duration.Value = (long)record.Attempt.Duration.TotalMilliseconds;
                state.Value = StateName(record.State);
                reason.Value = record.State == MessageState.Sent ? DBNull.Value : record.Reason ?? record.Attempt.Reply;
                await insert.ExecuteNonQueryAsync(CancellationToken.None);
            }
            return 0;
        }, cancellationToken);
    }

    /// <summary>Which of these ids were sent already (the idempotency check, one query for a whole batch).</summary>
    public Task<IReadOnlySet<string>> SentAmongAsync(IReadOnlyCollection<string> ids, CancellationToken cancellationToken)
    {
        if (ids.Count == 0)
            return Task.FromResult<IReadOnlySet<string>>(new HashSet<string>());
        return _database.ReadAsync<IReadOnlySet<string>>(async session =>
        {
            // CROSS JOIN fixes the loop order: look up each id by primary key. Left to itself the planner may walk
            // the state index through every sent message, which grows with the log.
            var command = session.Command("""
                SELECT m.id FROM json_each($ids) AS j CROSS JOIN messages AS m ON m.id = j.value WHERE m.state = 'sent'
                """);
            command.Set("$ids", JsonSerializer.Serialize(ids));
            var sent = new HashSet<string>(StringComparer.Ordinal);
            using var reader = await command.ExecuteReaderAsync(CancellationToken.None);
            while (await reader.ReadAsync(CancellationToken.None))
                sent.Add(reader.GetString(0));
            return sent;
        }, cancellationToken);
    }

    public Task<DeliveryRecord?> GetAsync(string id, CancellationToken cancellationToken) =>
        _database.ReadAsync(async session =>
        {
            var command = session.Command("""
                SELECT state, created_at, updated_at, last_reason FROM messages WHERE id = $id;
                SELECT at, outcome, smtp_code, reply, duration_ms FROM attempts WHERE id = $id ORDER BY at, rowid;
                """);
            command.Set("$id", id);
            using var reader = await command.ExecuteReaderAsync(CancellationToken.None);
            if (!await reader.ReadAsync(CancellationToken.None))
                return null;
            var state = ParseState(reader.GetString(0));
            var created = FromUnix(reader.GetInt64(1));
            var updated = FromUnix(reader.GetInt64(2));
            var reason = reader.IsDBNull(3) ? null : reader.GetString(3);
            await reader.NextResultAsync(CancellationToken.None);
            List<DeliveryAttempt> attempts = [];
            while (await reader.ReadAsync(CancellationToken.None))
            {
                attempts.Add(new DeliveryAttempt(
                    FromUnix(reader.GetInt64(0)),
                    reader.GetString(1),
                    reader.IsDBNull(2) ? null : reader.GetInt32(2),
                    reader.GetString(3),
                    TimeSpan.FromMilliseconds(reader.GetInt64(4))));
            }
            return (DeliveryRecord?)new DeliveryRecord(id, state, created, updated, reason, attempts);
        }, cancellationToken);

    /// <summary>Forgets messages that reached a final state before <paramref name="olderThan"/> ago.</summary>
    public Task<int> PruneAsync(TimeSpan olderThan, CancellationToken cancellationToken)
    {
        var before = Now() - (long)olderThan.TotalMilliseconds;
        return _database.WriteAsync(Durability.Deferred, async session =>
        {
            var command = session.Command("""
                DELETE FROM attempts WHERE id IN (SELECT id FROM messages WHERE state IN ('sent', 'dead') AND updated_at < $before);
                DELETE FROM messages WHERE state IN ('sent', 'dead') AND updated_at < $before;
                """);
            command.Set("$before", before);
            return await command.ExecuteNonQueryAsync(CancellationToken.None);
        }, cancellationToken);
    }

    private long Now() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private static DateTimeOffset FromUnix(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    private static string StateName(MessageState state) => state switch
    {
        MessageState.Queued => "queued",
        MessageState.Retrying => "retrying",
        MessageState.Sent => "sent",
        MessageState.Dead => "dead",
        _ => throw new ArgumentOutOfRangeException(nameof(state)),
    };

    private static MessageState ParseState(string name) => name switch
    {
        "queued" => MessageState.Queued,
        "retrying" => MessageState.Retrying,
        "sent" => MessageState.Sent,
        "dead" => MessageState.Dead,
        _ => throw new InvalidDataException($"unknown message state '{name}' in the delivery log"),
    };
}
