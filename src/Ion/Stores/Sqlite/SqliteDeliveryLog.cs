using System.Text.Json;
using Ion.Log;
using Ion.Queues;
using Microsoft.Data.Sqlite;

namespace Ion.Stores.Sqlite;

/// <summary>
/// The delivery log in the same SQLite file as the queue. Every write is one row at a time with a condition, as the
/// DynamoDB log will have to do it, so both pass one contract.
/// </summary>
/// <remarks>
/// Writes are <see cref="Durability.Deferred"/>: they survive a crash of ion, and the next durable commit (every
/// publish) fsyncs them. Losing the newest of them with the machine's power means a message may be sent again
/// (at-least-once), never that a message is lost.
/// </remarks>
public sealed class SqliteDeliveryLog : IDeliveryLog
{
    // messages: one row per message id, with everything about it, as a DynamoDB item will hold it. state: queued,
    //   retrying, sent, dead, suppressed, scheduled, cancelled. queued_at: when it was last queued (published or redriven), from which attempts_used
    //   counts and the queue time is measured. recipients: JSON array of RecipientStatus; attempts: JSON array of
    //   every try, appended to. body: kept while dead, so dead letters can be listed from here. claim_holder and
    //   claim_until: which queue copy is delivering it, until when. redrive_at: set while a redrive moves it.
    //   not_before: a retry's time, for a queue that cannot hide a message that long; while scheduled, its send_at.
    // Only what is looked for is indexed: creation time (pruning), dead letters by time (listing), and finished
    // messages by time (the dashboard's recent deliveries: one index entry per message as it finishes, appended at the
    // end, since the times only grow; reading the newest few then costs a few rows however large the log is).
    // throughput: per minute (its start), attempts that reached every recipient and those that did not, added to in
    //   the file's next transaction after they are recorded. The dashboard asks for the last hour every few seconds,
    //   and counting that from the messages would read every message of the hour each time; this answers from sixty
    //   rows.
    // Times are unix milliseconds.
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS messages (
          id TEXT PRIMARY KEY,
          state TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          last_reason TEXT,
          queued_at INTEGER NOT NULL DEFAULT 0,
          failure_class TEXT,
          attempts_used INTEGER NOT NULL DEFAULT 0,
          recipients TEXT,
          attempts TEXT,
          body TEXT,
          claim_holder TEXT,
          claim_until INTEGER,
          redrive_at INTEGER,
          not_before INTEGER
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS messages_by_created ON messages (created_at);
        CREATE INDEX IF NOT EXISTS messages_dead ON messages (updated_at) WHERE state = 'dead';
        CREATE INDEX IF NOT EXISTS messages_finished ON messages (updated_at) WHERE state IN ('sent', 'dead', 'suppressed');
        CREATE TABLE IF NOT EXISTS throughput (
          minute INTEGER PRIMARY KEY,
          sent INTEGER NOT NULL,
          failed INTEGER NOT NULL
        );
        """;


    private readonly SqliteDatabase _database;
    private readonly TimeProvider _time;

    public SqliteDeliveryLog(SqliteDatabase database, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
        _database.AddSchema(Schema, Upgrade);
        _time = time;
    }

    /// <summary>A file from before per-recipient outcomes and claims: the columns are added, and what can be carried
    /// over is (queued time, attempts counted, the attempts themselves, dead letters' bodies from the queue's dead
    /// letters); the attempts table and the state index go.</summary>
    private static void Upgrade(SqliteCommand command)
    {
        // The finished messages' index from before suppressed messages: SQLite only uses a partial index for a query
        // whose condition is the index's own, so it is made again with the new one.
        command.CommandText = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'messages_finished'";
        if (command.ExecuteScalar() is string finished && !finished.Contains("'suppressed'", StringComparison.Ordinal))
        {
            command.CommandText = "DROP INDEX messages_finished";
            command.ExecuteNonQuery();
        }
        var columns = SqliteDatabase.Columns(command, "messages");
        if (columns.Count == 0 || columns.Contains("queued_at"))
            return;
        var hasDeadLetters = (SqliteDatabase.Columns(command, "dead_letters")).Count > 0;
        command.CommandText = $"""
            ALTER TABLE messages ADD COLUMN queued_at INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE messages ADD COLUMN failure_class TEXT;
            ALTER TABLE messages ADD COLUMN attempts_used INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE messages ADD COLUMN recipients TEXT;
            ALTER TABLE messages ADD COLUMN attempts TEXT;
            ALTER TABLE messages ADD COLUMN body TEXT;
            ALTER TABLE messages ADD COLUMN claim_holder TEXT;
            ALTER TABLE messages ADD COLUMN claim_until INTEGER;
            ALTER TABLE messages ADD COLUMN redrive_at INTEGER;
            ALTER TABLE messages ADD COLUMN not_before INTEGER;
            UPDATE messages SET queued_at = created_at,
              attempts_used = (SELECT count(*) FROM attempts a WHERE a.id = messages.id AND a.outcome = 'retry'),
              attempts = (SELECT json_group_array(json_object('at', at, 'outcome', outcome, 'smtp_code', smtp_code, 'reply', reply,
                                                              'duration_ms', duration_ms))
                          FROM (SELECT * FROM attempts a WHERE a.id = messages.id ORDER BY at, rowid));
            {(hasDeadLetters ? "UPDATE messages SET body = (SELECT body FROM dead_letters d WHERE d.message_id = messages.id ORDER BY seq DESC LIMIT 1), failure_class = 'permanent' WHERE state = 'dead';" : "")}
            DROP INDEX IF EXISTS messages_by_state;
            DROP TABLE IF EXISTS attempts;
            """;
        command.ExecuteNonQuery();
    }

    public async Task<IReadOnlyDictionary<string, MessageState>> RecordQueuedAsync(IReadOnlyList<string> ids, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.Count == 0)
            return new Dictionary<string, MessageState>();
        var ms = at.ToUnixTimeMilliseconds();
        // Concurrent publishes record their "queued" rows in one transaction (the database's group commit); so do
        // concurrent delivery slots their outcomes, which each slot writes before its connection takes the next message.
        var states = await WriteQueuedAsync([.. ids.Select(id => (id, ms, (long?)null))]);
        return Known(ids, states);
    }

    public async Task<IReadOnlyDictionary<string, MessageState>> RecordScheduledAsync(IReadOnlyList<string> ids, IReadOnlyList<DateTimeOffset> sendAt,
        DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(sendAt);
        if (sendAt.Count != ids.Count)
            throw new ArgumentException("one time per id", nameof(sendAt));
        if (ids.Count == 0)
            return new Dictionary<string, MessageState>();
        var ms = at.ToUnixTimeMilliseconds();
        var states = await WriteQueuedAsync([.. ids.Select((id, i) => (id, ms, (long?)sendAt[i].ToUnixTimeMilliseconds()))]);
        return Known(ids, states);
    }

    private static Dictionary<string, MessageState> Known(IReadOnlyList<string> ids, IReadOnlyList<MessageState?> states)
    {
        var known = new Dictionary<string, MessageState>(StringComparer.Ordinal);
        for (var i = 0; i < ids.Count; i++)
        {
            if (states[i] is { } state)
                known[ids[i]] = state;
        }
        return known;
    }

    /// <summary>Per id: null when it was recorded now (queued, or scheduled until its SendAt), else the state the log
    /// already had.</summary>
    private Task<IReadOnlyList<MessageState?>> WriteQueuedAsync(IReadOnlyList<(string Id, long At, long? SendAt)> rows) =>
        _database.WriteAsync<IReadOnlyList<MessageState?>>(Durability.Deferred, session =>
        {
            // A known id keeps what it has: the worker may even have taken and finished it already. A scheduled one
            // counts as queued from its time (queued_at), so that Ion:Delivery:MaxQueueTime starts then, not at publish.
            var insert = session.Command("""
                INSERT INTO messages (id, state, created_at, updated_at, queued_at, attempts_used, not_before)
                VALUES ($id, CASE WHEN $send_at IS NULL THEN 'queued' ELSE 'scheduled' END, $at, $at, coalesce($send_at, $at), 0, $send_at)
                ON CONFLICT (id) DO NOTHING
                """);
            var id = insert.Parameter("$id", SqliteType.Text);
            var at = insert.Parameter("$at", SqliteType.Integer);
            var sendAt = insert.Parameter("$send_at", SqliteType.Integer);
            var find = session.Command("SELECT state FROM messages WHERE id = $id");
            var known = find.Parameter("$id", SqliteType.Text);
            var states = new MessageState?[rows.Count];
            for (var i = 0; i < rows.Count; i++)
            {
                id.Value = rows[i].Id;
                at.Value = rows[i].At;
                sendAt.Value = rows[i].SendAt is { } time ? time : DBNull.Value;
                if (insert.ExecuteNonQuery() == 1)
                    continue;
                known.Value = rows[i].Id;
                states[i] = StoredNames.State((string)(find.ExecuteScalar())!);
            }
            return states;
        }, CancellationToken.None);

    public Task BeginRedriveAsync(IReadOnlyList<string> ids, DateTimeOffset at, CancellationToken cancellationToken) =>
        ForEachIdAsync(ids, "UPDATE messages SET redrive_at = $at WHERE id = $id AND state = 'dead'", at, cancellationToken);

    public Task RecordRedrivenAsync(IReadOnlyList<string> ids, DateTimeOffset at, CancellationToken cancellationToken) =>
        // An id the log does not know (a dead letter that never reached it) starts a record; one a worker already
        // took up again (see ClaimAsync) keeps what it has.
        ForEachIdAsync(ids, $"""
            INSERT INTO messages (id, state, created_at, updated_at, queued_at, attempts_used)
            VALUES ($id, 'queued', $at, $at, $at, 0)
            ON CONFLICT (id) DO UPDATE SET {Requeued} WHERE messages.state = 'dead'
            """, at, cancellationToken);

    // Back to the queue with fresh attempts: failed recipients wait again, those that got it stay sent.
    private const string Requeued = """
        state = 'queued', queued_at = $at, updated_at = $at, attempts_used = 0, last_reason = NULL, failure_class = NULL,
        body = NULL, redrive_at = NULL, not_before = NULL,
        recipients = (SELECT json_group_array(CASE WHEN json_extract(value, '$.state') = 'failed'
                                                   THEN json_set(value, '$.state', 'pending') ELSE json(value) END)
                      FROM json_each(messages.recipients))
        """;

    private Task ForEachIdAsync(IReadOnlyList<string> ids, string sql, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.Count == 0)
            return Task.CompletedTask;
        return _database.WriteAsync(Durability.Deferred, session =>
        {
            var command = session.Command(sql);
            var id = command.Parameter("$id", SqliteType.Text);
            command.Set("$at", at.ToUnixTimeMilliseconds());
            foreach (var each in ids)
            {
                id.Value = each;
                command.ExecuteNonQuery();
            }
            return 0;
        }, cancellationToken);
    }

    public Task<IReadOnlyList<Claim>> ClaimAsync(IReadOnlyList<ClaimRequest> requests, TimeSpan lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(requests);
        if (requests.Count == 0)
            return Task.FromResult<IReadOnlyList<Claim>>([]);
        return _database.WriteAsync<IReadOnlyList<Claim>>(Durability.Deferred, session =>
        {
            var now = Now();
            // 1. An id never seen (published straight onto the queue) gets a record. 2. A dead letter caught mid-
            // redrive starts afresh, as RecordRedrivenAsync would. 3. The claim: free, expired, or this copy's own.
            // 4. What the log now says.
            var claim = session.Command($"""
                INSERT INTO messages (id, state, created_at, updated_at, queued_at, attempts_used)
                VALUES ($id, 'queued', $enqueued, $enqueued, $enqueued, 0)
                ON CONFLICT (id) DO NOTHING;
                UPDATE messages SET {Requeued.Replace("$at", "$now", StringComparison.Ordinal)}
                WHERE id = $id AND state = 'dead' AND redrive_at IS NOT NULL;
                UPDATE messages SET claim_holder = $holder, claim_until = $until
                WHERE id = $id AND (state IN ('queued', 'retrying') OR (state = 'scheduled' AND not_before <= $due))
                  AND (claim_holder IS NULL OR claim_holder = $holder OR claim_until <= $now);
                SELECT state, attempts_used, queued_at, recipients, last_reason, failure_class, claim_holder, claim_until, not_before
                FROM messages WHERE id = $id;
                """);
            var id = claim.Parameter("$id", SqliteType.Text);
            var holder = claim.Parameter("$holder", SqliteType.Text);
            var enqueued = claim.Parameter("$enqueued", SqliteType.Integer);
            claim.Set("$now", now);
            claim.Set("$due", now + (long)ScheduleGrace.TotalMilliseconds);
            claim.Set("$until", now + (long)lease.TotalMilliseconds);

            var claims = new List<Claim>(requests.Count);
            foreach (var request in requests)
            {
                id.Value = request.Id;
                holder.Value = request.Holder;
                enqueued.Value = request.EnqueuedAt.ToUnixTimeMilliseconds();
                using var reader = claim.ExecuteReader();
                reader.Read();
                var state = StoredNames.State(reader.GetString(0));
                var history = new DeliveryHistory(
                    AttemptsUsed: reader.GetInt32(1),
                    QueuedAt: FromUnix(reader.GetInt64(2)),
                    Recipients: ReadRecipients(reader, 3) ?? [],
                    LastReason: reader.IsDBNull(4) ? null : reader.GetString(4),
                    FailureClass: reader.IsDBNull(5) ? null : StoredNames.FailureClass(reader.GetString(5)),
                    NotBefore: reader.IsDBNull(8) ? null : FromUnix(reader.GetInt64(8)));
                var claimedBy = reader.IsDBNull(6) ? null : reader.GetString(6);
                claims.Add(state switch
                {
                    MessageState.Sent or MessageState.Suppressed => new Claim(request.Id, ClaimStatus.AlreadySent, history),
                    MessageState.Dead => new Claim(request.Id, ClaimStatus.Dead, history),
                    MessageState.Cancelled => new Claim(request.Id, ClaimStatus.Cancelled, history),
                    _ when claimedBy == request.Holder => new Claim(request.Id, ClaimStatus.Claimed, history),
                    MessageState.Scheduled when history.NotBefore is { } sendAt && sendAt.ToUnixTimeMilliseconds() > now + (long)ScheduleGrace.TotalMilliseconds =>
                        new Claim(request.Id, ClaimStatus.Scheduled, history, sendAt),
                    _ => new Claim(request.Id, ClaimStatus.HeldByOther, history, FromUnix(reader.GetInt64(7))),
                });
            }
            return claims;
        }, cancellationToken);
    }

    public Task<CancelResult> CancelAsync(string id, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        return _database.WriteAsync(Durability.Deferred, session =>
        {
            var now = at.ToUnixTimeMilliseconds();
            // Only while no copy holds a claim: from its time on, a claim is what a delivery starts with.
            var cancel = session.Command("""
                UPDATE messages SET state = 'cancelled', updated_at = $now, not_before = NULL
                WHERE id = $id AND state = 'scheduled' AND (claim_holder IS NULL OR claim_until <= $now);
                SELECT state, claim_holder IS NOT NULL AND claim_until > $now FROM messages WHERE id = $id;
                """);
            cancel.Set("$id", id);
            cancel.Set("$now", now);
            using var reader = cancel.ExecuteReader();
            if (!reader.Read())
                return new CancelResult(CancelOutcome.Unknown, null);
            var state = StoredNames.State(reader.GetString(0));
            return state switch
            {
                MessageState.Cancelled => new CancelResult(CancelOutcome.Cancelled, state),
                MessageState.Scheduled => new CancelResult(CancelOutcome.BeingSent, state),
                _ => new CancelResult(CancelOutcome.NotScheduled, state),
            };
        }, cancellationToken);
    }

    public Task ReleaseAsync(IReadOnlyList<ClaimRequest> claims, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(claims);
        if (claims.Count == 0)
            return Task.CompletedTask;
        return _database.WriteAsync(Durability.Deferred, session =>
        {
            var release = session.Command("UPDATE messages SET claim_holder = NULL, claim_until = NULL WHERE id = $id AND claim_holder = $holder");
            var id = release.Parameter("$id", SqliteType.Text);
            var holder = release.Parameter("$holder", SqliteType.Text);
            foreach (var claim in claims)
            {
                id.Value = claim.Id;
                holder.Value = claim.Holder;
                release.ExecuteNonQuery();
            }
            return 0;
        }, cancellationToken);
    }

    public async Task RecordAsync(IReadOnlyList<DeliveryEntry> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (entries.Count > 0)
            await WriteOutcomesAsync(entries);
    }

    private async Task WriteOutcomesAsync(IReadOnlyList<DeliveryEntry> entries)
    {
        var now = Now();
        // Serialised before the transaction, so the file's write lock is held for the statements only.
        var rows = entries.Select(entry => (
            entry.Id,
            State: StoredNames.Of(entry.State),
            Reason: entry.State == MessageState.Sent ? null : entry.Reason,
            Class: entry.FailureClass is { } failureClass ? StoredNames.Of(failureClass) : null,
            entry.AttemptsUsed,
            Recipients: JsonSerializer.Serialize([.. entry.Recipients], SqliteJson.Default.ListRecipientStatus),
            Attempt: entry.Attempt is { } attempt ? JsonSerializer.Serialize(StoredAttempt.Of(attempt), SqliteJson.Default.StoredAttempt) : null,
            Body: entry.State == MessageState.Dead ? entry.Body : null,
            NotBefore: entry.NotBefore?.ToUnixTimeMilliseconds(),
            // What the dashboard counts per minute: attempts that reached every recipient, and the rest.
            Sent: entry.Attempt?.Outcome == "sent",
            Failed: entry.Attempt is { Outcome: not "sent" } || (entry.Attempt is null && entry.State == MessageState.Dead),
            entry.Events)).ToList();
        var (sent, failed) = await _database.WriteAsync(Durability.Deferred, session =>
        {
            // Nothing makes a sent message unsent: a late outcome of another copy must not. The attempt, if any, is
            // appended to the row's list: one row changes, whatever happened.
            var message = session.Command("""
                INSERT INTO messages (id, state, created_at, updated_at, queued_at, last_reason, failure_class, attempts_used, recipients, attempts, body, not_before)
                VALUES ($id, $state, $now, $now, $now, $reason, $class, $used, $recipients,
                        CASE WHEN $attempt IS NULL THEN '[]' ELSE json_array(json($attempt)) END, $body, $not_before)
                ON CONFLICT (id) DO UPDATE SET state = $state, updated_at = $now, last_reason = $reason, failure_class = $class,
                  attempts_used = $used, recipients = $recipients, body = $body, claim_holder = NULL, claim_until = NULL,
                  not_before = $not_before,
                  attempts = CASE WHEN $attempt IS NULL THEN messages.attempts
                                  ELSE json_insert(coalesce(messages.attempts, '[]'), '$[#]', json($attempt)) END
                WHERE messages.state <> 'sent' OR $state = 'sent'
                """);
            message.Set("$now", now);
            var (sent, failed) = (0, 0);
            foreach (var row in rows)
            {
                message.Set("$id", row.Id);
                message.Set("$state", row.State);
                message.Set("$reason", row.Reason);
                message.Set("$class", row.Class);
                message.Set("$used", row.AttemptsUsed);
                message.Set("$recipients", row.Recipients);
                message.Set("$attempt", row.Attempt);
                message.Set("$body", row.Body);
                message.Set("$not_before", row.NotBefore);
                // Counted only when written: an outcome refused because the message was sent already did not happen.
                if (message.ExecuteNonQuery() == 0)
                    continue;
                // The outcome's events with the outcome, in its transaction (SqliteEventOutbox).
                if (row.Events is { Count: > 0 } events)
                    SqliteEventOutbox.Insert(session, events);
                sent += row.Sent ? 1 : 0;
                failed += row.Failed ? 1 : 0;
            }
            return (sent, failed);
        }, CancellationToken.None);
        if (sent + failed == 0)
            return;
        // The per-minute counts ride in the next transaction (SqliteDatabase.Defer): written with each outcome, their row
        // was one more page in every delivery's commit, and a crash losing the last fraction of a second of them only
        // makes the dashboard's minute a little short.
        var at = now - now % MinuteMs;
        _database.Defer(session =>
        {
            var minute = session.Command("""
                INSERT INTO throughput (minute, sent, failed) VALUES ($minute, $sent, $failed)
                ON CONFLICT (minute) DO UPDATE SET sent = sent + excluded.sent, failed = failed + excluded.failed
                """);
            minute.Set("$minute", at);
            minute.Set("$sent", sent);
            minute.Set("$failed", failed);
            minute.ExecuteNonQuery();
        });
    }

    public Task<DeliveryRecord?> GetAsync(string id, CancellationToken cancellationToken) =>
        _database.ReadAsync(session =>
        {
            var command = session.Command("""
                SELECT state, created_at, updated_at, last_reason, failure_class, attempts_used, recipients, attempts, not_before
                FROM messages WHERE id = $id
                """);
            command.Set("$id", id);
            using var reader = command.ExecuteReader();
            if (!reader.Read())
                return null;
            var attempts = reader.IsDBNull(7) ? [] : JsonSerializer.Deserialize(reader.GetString(7), SqliteJson.Default.ListStoredAttempt) ?? [];
            var state = StoredNames.State(reader.GetString(0));
            return (DeliveryRecord?)new DeliveryRecord(
                id,
                state,
                FromUnix(reader.GetInt64(1)),
                FromUnix(reader.GetInt64(2)),
                reader.IsDBNull(3) ? null : reader.GetString(3),
                reader.IsDBNull(4) ? null : StoredNames.FailureClass(reader.GetString(4)),
                reader.GetInt32(5),
                ReadRecipients(reader, 6) ?? [],
                [.. attempts.Select(a => a.ToAttempt())],
                state == MessageState.Scheduled && !reader.IsDBNull(8) ? FromUnix(reader.GetInt64(8)) : null);
        }, cancellationToken);

    public Task<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(DeadLetterQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfNegative(query.Limit);
        return _database.ReadAsync<IReadOnlyList<DeadLetter>>(session =>
        {
            // One kept statement for every combination: a filter left out is NULL and matches everything.
            var list = session.Command("""
                SELECT id, body, last_reason, failure_class, attempts_used, created_at, updated_at, recipients
                FROM messages
                WHERE state = 'dead'
                  AND ($class IS NULL OR failure_class = $class)
                  AND ($since IS NULL OR updated_at >= $since)
                  AND ($before IS NULL OR updated_at < $before)
                  AND ($domain IS NULL OR EXISTS (
                        SELECT 1 FROM json_each(messages.recipients) AS r
                        WHERE lower(substr(json_extract(r.value, '$.address'), instr(json_extract(r.value, '$.address'), '@') + 1)) = lower($domain)))
                ORDER BY updated_at, id
                LIMIT $limit
                """);
            list.Set("$class", query.FailureClass is { } failureClass ? StoredNames.Of(failureClass) : null);
            list.Set("$since", query.DeadSince?.ToUnixTimeMilliseconds());
            list.Set("$before", query.DeadBefore?.ToUnixTimeMilliseconds());
            list.Set("$domain", query.RecipientDomain);
            list.Set("$limit", query.Limit);

            var dead = new List<DeadLetter>();
            using var reader = list.ExecuteReader();
            while (reader.Read())
            {
                dead.Add(new DeadLetter(
                    Id: reader.GetString(0),
                    Body: reader.IsDBNull(1) ? "" : reader.GetString(1),
                    Reason: reader.IsDBNull(2) ? "" : reader.GetString(2),
                    FailureClass: reader.IsDBNull(3) ? FailureClass.Permanent : StoredNames.FailureClass(reader.GetString(3)),
                    Attempts: reader.GetInt32(4),
                    EnqueuedAt: FromUnix(reader.GetInt64(5)),
                    DeadAt: FromUnix(reader.GetInt64(6)),
                    Recipients: ReadRecipients(reader, 7) ?? []));
            }
            return dead;
        }, cancellationToken);
    }

    public Task<IReadOnlyList<MinuteActivity>?> GetThroughputAsync(DateTimeOffset since, CancellationToken cancellationToken) =>
        _database.ReadAsync<IReadOnlyList<MinuteActivity>?>(session =>
        {
            var command = session.Command("SELECT minute, sent, failed FROM throughput WHERE minute >= $since ORDER BY minute");
            var ms = since.ToUnixTimeMilliseconds();
            command.Set("$since", ms - ms % MinuteMs);
            var minutes = new List<MinuteActivity>();
            using var reader = command.ExecuteReader();
            while (reader.Read())
                minutes.Add(new MinuteActivity(FromUnix(reader.GetInt64(0)), reader.GetInt32(1), reader.GetInt32(2)));
            return minutes;
        }, cancellationToken);

    public Task<IReadOnlyList<FinishedMessage>?> ListRecentAsync(int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        return _database.ReadAsync<IReadOnlyList<FinishedMessage>?>(session =>
        {
            // Read backwards along messages_finished: the condition is the index's own, word for word, so SQLite uses it.
            var command = session.Command("""
                SELECT id, state, updated_at, json_array_length(coalesce(attempts, '[]')), recipients, last_reason, failure_class
                FROM messages
                WHERE state IN ('sent', 'dead', 'suppressed')
                ORDER BY updated_at DESC, id DESC
                LIMIT $limit
                """);
            command.Set("$limit", limit);
            var recent = new List<FinishedMessage>();
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                recent.Add(new FinishedMessage(
                    Id: reader.GetString(0),
                    State: StoredNames.State(reader.GetString(1)),
                    FinishedAt: FromUnix(reader.GetInt64(2)),
                    Attempts: reader.GetInt32(3),
                    Recipients: ReadRecipients(reader, 4) ?? [],
                    Reason: reader.IsDBNull(5) ? null : reader.GetString(5),
                    FailureClass: reader.IsDBNull(6) ? null : StoredNames.FailureClass(reader.GetString(6))));
            }
            return recent;
        }, cancellationToken);
    }

    public Task<int> PruneAsync(DateTimeOffset before, CancellationToken cancellationToken) =>
        _database.WriteAsync(Durability.Deferred, session =>
        {
            var minutes = session.Command("DELETE FROM throughput WHERE minute < $before");
            minutes.Set("$before", before.ToUnixTimeMilliseconds());
            minutes.ExecuteNonQuery();
            var command = session.Command("DELETE FROM messages WHERE created_at < $before AND state IN ('sent', 'dead', 'suppressed', 'cancelled')");
            command.Set("$before", before.ToUnixTimeMilliseconds());
            return command.ExecuteNonQuery();
        }, cancellationToken);

    private const long MinuteMs = 60_000;

    private static readonly TimeSpan ScheduleGrace = DeliveryHistory.Grace;

    private long Now() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>An attempt as the row keeps it: times in unix milliseconds. Attempts recorded before ion had a fallback
    /// have no relay.</summary>
    internal sealed record StoredAttempt(long At, string Outcome, int? SmtpCode, string Reply, long DurationMs, List<RecipientStatus>? Recipients,
        string? Relay = null)
    {
        public static StoredAttempt Of(DeliveryAttempt attempt) => new(attempt.At.ToUnixTimeMilliseconds(), attempt.Outcome, attempt.SmtpCode,
            attempt.Reply, (long)attempt.Duration.TotalMilliseconds, attempt.Recipients is { } recipients ? [.. recipients] : null, attempt.Relay);

        public DeliveryAttempt ToAttempt() => new(FromUnix(At), Outcome, SmtpCode, Reply, TimeSpan.FromMilliseconds(DurationMs), Recipients, Relay);
    }

    private static DateTimeOffset FromUnix(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    private static List<RecipientStatus>? ReadRecipients(SqliteDataReader reader, int column) =>
        reader.IsDBNull(column) ? null : JsonSerializer.Deserialize(reader.GetString(column), SqliteJson.Default.ListRecipientStatus);
}
