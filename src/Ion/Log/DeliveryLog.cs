using Microsoft.Data.Sqlite;

namespace Ion.Log;

/// <summary>
/// Every attempt and the current state of each message id, in the same SQLite file as the queue. The queue is the
/// durable hand-off; the log is the record people and the idempotency check read.
/// </summary>
/// <remarks>
/// Schema: <c>messages</c> has one row per message id (state, times, last reason); <c>attempts</c> one row per try.
/// Times are unix milliseconds.
/// </remarks>
public sealed class DeliveryLog(string databasePath, TimeProvider time)
{
    private readonly string _connectionString = new SqliteConnectionStringBuilder
    {
        DataSource = databasePath,
        Pooling = true,
        DefaultTimeout = 30,
    }.ToString();

    private readonly Lock _schemaLock = new();
    private volatile bool _schemaReady;

    /// <summary>Records messages as queued (published, or redriven) at <paramref name="enqueuedAt"/>, a time taken
    /// before they went on the queue.</summary>
    public async Task RecordQueuedAsync(IReadOnlyList<string> ids, DateTimeOffset enqueuedAt, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        // The worker may take a message and record its outcome before this runs: anything recorded since the
        // message was enqueued is newer and stays. A repeated id that was already sent stays sent: the worker will
        // not send it again.
        command.CommandText = """
            INSERT INTO messages (id, state, created_at, updated_at) VALUES ($id, 'queued', $at, $at)
            ON CONFLICT (id) DO UPDATE SET
              state = CASE WHEN state = 'sent' THEN 'sent' ELSE 'queued' END,
              last_reason = CASE WHEN state = 'sent' THEN last_reason END,
              updated_at = $at
            WHERE messages.updated_at < $at
            """;
        var id = command.Parameters.Add("$id", SqliteType.Text);
        command.Parameters.AddWithValue("$at", enqueuedAt.ToUnixTimeMilliseconds());
        foreach (var value in ids)
        {
            id.Value = value;
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>Records one attempt and the state it leaves the message in; <paramref name="reason"/> (why it is dead
    /// or retrying) defaults to the attempt's reply.</summary>
    public async Task RecordAttemptAsync(string id, DeliveryAttempt attempt, MessageState state, CancellationToken cancellationToken, string? reason = null)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
        await using (var insert = connection.CreateCommand())
        {
            insert.CommandText = """
                INSERT INTO attempts (id, at, outcome, smtp_code, reply, duration_ms)
                VALUES ($id, $at, $outcome, $code, $reply, $duration)
                """;
            insert.Parameters.AddWithValue("$id", id);
            insert.Parameters.AddWithValue("$at", attempt.At.ToUnixTimeMilliseconds());
            insert.Parameters.AddWithValue("$outcome", attempt.Outcome);
            insert.Parameters.AddWithValue("$code", (object?)attempt.SmtpCode ?? DBNull.Value);
            insert.Parameters.AddWithValue("$reply", attempt.Reply);
            insert.Parameters.AddWithValue("$duration", (long)attempt.Duration.TotalMilliseconds);
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
        await UpsertStateAsync(connection, [id], state, state == MessageState.Sent ? null : reason ?? attempt.Reply, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<bool> IsSentAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT 1 FROM messages WHERE id = $id AND state = 'sent'";
        command.Parameters.AddWithValue("$id", id);
        return await command.ExecuteScalarAsync(cancellationToken) is not null;
    }

    public async Task<DeliveryRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT state, created_at, updated_at, last_reason FROM messages WHERE id = $id;
            SELECT at, outcome, smtp_code, reply, duration_ms FROM attempts WHERE id = $id ORDER BY at, rowid;
            """;
        command.Parameters.AddWithValue("$id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
            return null;
        var state = ParseState(reader.GetString(0));
        var created = FromUnix(reader.GetInt64(1));
        var updated = FromUnix(reader.GetInt64(2));
        var reason = reader.IsDBNull(3) ? null : reader.GetString(3);
        await reader.NextResultAsync(cancellationToken);
        List<DeliveryAttempt> attempts = [];
        while (await reader.ReadAsync(cancellationToken))
        {
            attempts.Add(new DeliveryAttempt(
                FromUnix(reader.GetInt64(0)),
                reader.GetString(1),
                reader.IsDBNull(2) ? null : reader.GetInt32(2),
                reader.GetString(3),
                TimeSpan.FromMilliseconds(reader.GetInt64(4))));
        }
        return new DeliveryRecord(id, state, created, updated, reason, attempts);
    }

    /// <summary>Forgets messages that reached a final state before <paramref name="olderThan"/> ago.</summary>
    public async Task<int> PruneAsync(TimeSpan olderThan, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            DELETE FROM attempts WHERE id IN (SELECT id FROM messages WHERE state IN ('sent', 'dead') AND updated_at < $before);
            DELETE FROM messages WHERE state IN ('sent', 'dead') AND updated_at < $before;
            """;
        command.Parameters.AddWithValue("$before", Now() - (long)olderThan.TotalMilliseconds);
        var removed = await command.ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return removed;
    }

    private async Task UpsertStateAsync(SqliteConnection connection, IReadOnlyList<string> ids, MessageState state, string? reason, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO messages (id, state, created_at, updated_at, last_reason) VALUES ($id, $state, $now, $now, $reason)
            ON CONFLICT (id) DO UPDATE SET state = $state, updated_at = $now, last_reason = $reason
            """;
        var id = command.Parameters.Add("$id", SqliteType.Text);
        command.Parameters.AddWithValue("$state", StateName(state));
        command.Parameters.AddWithValue("$now", Now());
        command.Parameters.AddWithValue("$reason", (object?)reason ?? DBNull.Value);
        foreach (var value in ids)
        {
            id.Value = value;
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using (var pragma = connection.CreateCommand())
        {
            // The log is not the durability point (the queue is, with synchronous=FULL); NORMAL in WAL mode keeps it
            // consistent after a crash and may only lose the last moments on power loss.
            pragma.CommandText = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";
            await pragma.ExecuteNonQueryAsync(cancellationToken);
        }
        if (!_schemaReady)
            CreateSchema(connection);
        return connection;
    }

    private void CreateSchema(SqliteConnection connection)
    {
        lock (_schemaLock)
        {
            if (_schemaReady)
                return;
            using var command = connection.CreateCommand();
            command.CommandText = """
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
            command.ExecuteNonQuery();
            _schemaReady = true;
        }
    }

    private long Now() => time.GetUtcNow().ToUnixTimeMilliseconds();

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
