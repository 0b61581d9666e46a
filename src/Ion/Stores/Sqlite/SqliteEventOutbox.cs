using Ion.Events;

namespace Ion.Stores.Sqlite;

/// <summary>The event outbox as a table of the SQLite file: one row per event and webhook, deleted once delivered.
/// An outcome's events are inserted by <see cref="SqliteDeliveryLog"/> in the outcome's own transaction
/// (<see cref="Insert"/>), so an outcome is never recorded without its events, nor the other way round.</summary>
public sealed class SqliteEventOutbox : IEventOutbox
{
    // next_at: due from then (a taker holds an event by moving it on). dead_at: given up, with last_error why; a dead
    // event no longer holds back the later events of its message. Times are unix milliseconds.
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS webhook_events (
          seq INTEGER PRIMARY KEY AUTOINCREMENT,
          webhook TEXT NOT NULL,
          event_id TEXT NOT NULL,
          message_id TEXT NOT NULL,
          type TEXT NOT NULL,
          payload TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          next_at INTEGER NOT NULL,
          attempts INTEGER NOT NULL DEFAULT 0,
          last_error TEXT,
          dead_at INTEGER
        );
        CREATE INDEX IF NOT EXISTS webhook_events_due ON webhook_events (webhook, next_at) WHERE dead_at IS NULL;
        CREATE INDEX IF NOT EXISTS webhook_events_by_message ON webhook_events (webhook, message_id, seq) WHERE dead_at IS NULL;
        CREATE INDEX IF NOT EXISTS webhook_events_dead ON webhook_events (webhook, dead_at) WHERE dead_at IS NOT NULL;
        """;

    private const string InsertSql = """
        INSERT INTO webhook_events (webhook, event_id, message_id, type, payload, created_at, next_at)
        VALUES ($webhook, $event_id, $message_id, $type, $payload, $created_at, $created_at)
        """;

    private readonly SqliteDatabase _database;

    public SqliteEventOutbox(SqliteDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
        _database.AddSchema(Schema);
    }

    /// <summary>Inserts <paramref name="events"/> in the session's transaction.</summary>
    internal static void Insert(SqliteSession session, IReadOnlyList<OutboxEvent> events)
    {
        var insert = session.Command(InsertSql);
        foreach (var e in events)
        {
            insert.Set("$webhook", e.Webhook);
            insert.Set("$event_id", e.EventId);
            insert.Set("$message_id", e.MessageId);
            insert.Set("$type", e.Type);
            insert.Set("$payload", e.Payload);
            insert.Set("$created_at", e.CreatedAt.ToUnixTimeMilliseconds());
            insert.ExecuteNonQuery();
        }
    }

    public Task AddAsync(IReadOnlyList<OutboxEvent> events, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(events);
        return events.Count == 0
            ? Task.CompletedTask
            : _database.WriteAsync(Durability.Durable, session =>
            {
                Insert(session, events);
                return 0;
            }, cancellationToken);
    }

    public Task<IReadOnlyList<PendingEvent>> TakeAsync(string webhook, DateTimeOffset now, TimeSpan lease, int limit, CancellationToken cancellationToken) =>
        _database.WriteAsync<IReadOnlyList<PendingEvent>>(Durability.Deferred, session =>
        {
            // The oldest due events with nothing of their message before them still waiting (in order per message).
            var take = session.Command("""
                UPDATE webhook_events SET next_at = $until
                WHERE seq IN (
                  SELECT e.seq FROM webhook_events e
                  WHERE e.webhook = $webhook AND e.dead_at IS NULL AND e.next_at <= $now
                    AND NOT EXISTS (SELECT 1 FROM webhook_events p
                                    WHERE p.webhook = e.webhook AND p.message_id = e.message_id AND p.dead_at IS NULL AND p.seq < e.seq)
                  ORDER BY e.seq LIMIT $limit)
                RETURNING seq, event_id, message_id, payload, attempts, created_at
                """);
            take.Set("$webhook", webhook);
            take.Set("$now", now.ToUnixTimeMilliseconds());
            take.Set("$until", (now + lease).ToUnixTimeMilliseconds());
            take.Set("$limit", limit);
            List<PendingEvent> taken = [];
            using (var reader = take.ExecuteReader())
            {
                while (reader.Read())
                {
                    taken.Add(new PendingEvent(reader.GetInt64(0).ToString(System.Globalization.CultureInfo.InvariantCulture), reader.GetString(1),
                        reader.GetString(2), reader.GetString(3), reader.GetInt32(4), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5))));
                }
            }
            // RETURNING gives rows in no promised order.
            taken.Sort((a, b) => Seq(a).CompareTo(Seq(b)));
            return taken;
        }, cancellationToken);

    public Task DeliveredAsync(IReadOnlyList<PendingEvent> events, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(events);
        // Deferred: a delivery forgotten in a crash is sent again, which at least once allows.
        return _database.WriteAsync(Durability.Deferred, session =>
        {
            var delete = session.Command("DELETE FROM webhook_events WHERE seq = $seq");
            foreach (var e in events)
            {
                delete.Set("$seq", Seq(e));
                delete.ExecuteNonQuery();
            }
            return 0;
        }, cancellationToken);
    }

    public Task RetryAsync(PendingEvent pending, DateTimeOffset dueAt, string why, CancellationToken cancellationToken) =>
        // Deferred: a retry forgotten in a crash is only tried again sooner.
        FailAsync(pending, "next_at", dueAt, why, Durability.Deferred, cancellationToken);

    public Task DeadAsync(PendingEvent pending, DateTimeOffset at, string why, CancellationToken cancellationToken) =>
        FailAsync(pending, "dead_at", at, why, Durability.Durable, cancellationToken);

    /// <summary>One more failed send of <paramref name="pending"/>, with why, and <paramref name="column"/> (when it is
    /// due again, or when it died) set to <paramref name="at"/>.</summary>
    private Task<int> FailAsync(PendingEvent pending, string column, DateTimeOffset at, string why, Durability durability, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pending);
        return _database.WriteAsync(durability, session =>
        {
            var failed = session.Command($"UPDATE webhook_events SET {column} = $at, attempts = attempts + 1, last_error = $error WHERE seq = $seq");
            failed.Set("$seq", Seq(pending));
            failed.Set("$at", at.ToUnixTimeMilliseconds());
            failed.Set("$error", why);
            return failed.ExecuteNonQuery();
        }, cancellationToken);
    }

    private static long Seq(PendingEvent pending) => long.Parse(pending.Key, System.Globalization.CultureInfo.InvariantCulture);

    public Task<WebhookBacklog> BacklogAsync(string webhook, CancellationToken cancellationToken) =>
        _database.ReadAsync(session =>
        {
            var pending = session.Command("SELECT count(*), min(created_at) FROM webhook_events WHERE webhook = $webhook AND dead_at IS NULL");
            pending.Set("$webhook", webhook);
            int count;
            DateTimeOffset? oldest;
            using (var reader = pending.ExecuteReader())
            {
                reader.Read();
                count = reader.GetInt32(0);
                oldest = reader.IsDBNull(1) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1));
            }
            var dead = session.Command("""
                SELECT (SELECT count(*) FROM webhook_events WHERE webhook = $webhook AND dead_at IS NOT NULL), dead_at, last_error
                FROM webhook_events WHERE webhook = $webhook AND dead_at IS NOT NULL ORDER BY dead_at DESC LIMIT 1
                """);
            dead.Set("$webhook", webhook);
            using var last = dead.ExecuteReader();
            return last.Read()
                ? new WebhookBacklog(count, oldest, last.GetInt32(0), DateTimeOffset.FromUnixTimeMilliseconds(last.GetInt64(1)), last.IsDBNull(2) ? null : last.GetString(2))
                : new WebhookBacklog(count, oldest, 0, null, null);
        }, afterDeferred: false, cancellationToken);

    public Task<int> PruneAsync(DateTimeOffset before, CancellationToken cancellationToken) =>
        _database.WriteAsync(Durability.Deferred, session =>
        {
            var prune = session.Command("DELETE FROM webhook_events WHERE dead_at IS NOT NULL AND dead_at < $before");
            prune.Set("$before", before.ToUnixTimeMilliseconds());
            return prune.ExecuteNonQuery();
        }, cancellationToken);
}
