using System.Text.Json;
using Ion.Suppression;

namespace Ion.Stores.Sqlite;

/// <summary>The suppression list as a table of the SQLite file: one row per address, looked up by its key.</summary>
public sealed class SqliteSuppressionList : ISuppressionList
{
    // address: canonical, compared without case (domains are A-labels, so ASCII). domain: for listing by domain.
    // reason: bounce, complaint, manual. expires_at: null for ever. Times are unix milliseconds. An expired row is
    // ignored by every read, replaced by the next add, and deleted by the hourly prune.
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS suppressions (
          address TEXT PRIMARY KEY COLLATE NOCASE,
          domain TEXT NOT NULL COLLATE NOCASE,
          reason TEXT NOT NULL,
          detail TEXT NOT NULL,
          at INTEGER NOT NULL,
          expires_at INTEGER,
          message_id TEXT
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS suppressions_by_domain ON suppressions (domain, address);
        """;

    private const string Columns = "address, reason, detail, at, expires_at, message_id";

    private readonly SqliteDatabase _database;

    public SqliteSuppressionList(SqliteDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
        _database.AddSchema(Schema);
    }

    public Task<IReadOnlyDictionary<string, SuppressedAddress>> FindAsync(IReadOnlyCollection<string> addresses, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        var json = JsonSerializer.Serialize(addresses, SqliteJson.Default.IReadOnlyCollectionString);
        return _database.ReadAsync<IReadOnlyDictionary<string, SuppressedAddress>>(session =>
        {
            // The column's NOCASE applies to the IN, and the key answers it: one lookup per address.
            var find = session.Command($"""
                SELECT {Columns} FROM suppressions
                WHERE address IN (SELECT value FROM json_each($addresses)) AND (expires_at IS NULL OR expires_at > $now)
                """);
            find.Set("$addresses", json);
            find.Set("$now", now.ToUnixTimeMilliseconds());
            var found = new Dictionary<string, SuppressedAddress>(StringComparer.OrdinalIgnoreCase);
            using var reader = find.ExecuteReader();
            while (reader.Read())
            {
                var entry = Read(reader);
                found[entry.Address] = entry;
            }
            // Keyed by the address as asked for, whatever its case.
            return addresses.Where(found.ContainsKey).Distinct(StringComparer.OrdinalIgnoreCase)
                .ToDictionary(a => a, a => found[a], StringComparer.OrdinalIgnoreCase);
            // Before every send: the deferred writes (completions, counts) never touch this table, so they wait.
        }, afterDeferred: false, cancellationToken);
    }

    public Task AddAsync(IReadOnlyList<SuppressedAddress> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        return _database.WriteAsync(Durability.Durable, session =>
        {
            // A complaint in force stays: only another complaint renews it.
            var add = session.Command("""
                INSERT INTO suppressions (address, domain, reason, detail, at, expires_at, message_id)
                VALUES ($address, $domain, $reason, $detail, $at, $expires_at, $message_id)
                ON CONFLICT (address) DO UPDATE SET
                  reason = excluded.reason, detail = excluded.detail, at = excluded.at,
                  expires_at = excluded.expires_at, message_id = excluded.message_id
                WHERE suppressions.reason <> 'complaint' OR excluded.reason = 'complaint'
                   OR (suppressions.expires_at IS NOT NULL AND suppressions.expires_at <= excluded.at)
                """);
            foreach (var entry in entries)
            {
                add.Set("$address", entry.Address);
                add.Set("$domain", entry.Address[(entry.Address.LastIndexOf('@') + 1)..]);
                add.Set("$reason", entry.Reason.Name());
                add.Set("$detail", entry.Detail);
                add.Set("$at", entry.At.ToUnixTimeMilliseconds());
                add.Set("$expires_at", entry.ExpiresAt?.ToUnixTimeMilliseconds());
                add.Set("$message_id", entry.MessageId);
                add.ExecuteNonQuery();
            }
            return 0;
        }, cancellationToken);
    }

    public Task<bool> RemoveAsync(string address, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(address);
        return _database.WriteAsync(Durability.Durable, session =>
        {
            var remove = session.Command("DELETE FROM suppressions WHERE address = $address");
            remove.Set("$address", address);
            return remove.ExecuteNonQuery() > 0;
        }, cancellationToken);
    }

    public Task<int> RemoveAddedByAsync(IReadOnlyCollection<string> messageIds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messageIds);
        var json = JsonSerializer.Serialize(messageIds, SqliteJson.Default.IReadOnlyCollectionString);
        return _database.WriteAsync(Durability.Durable, session =>
        {
            // Rare (a streak of refusals about the relay): a scan of the list is fine.
            var remove = session.Command("DELETE FROM suppressions WHERE message_id IN (SELECT value FROM json_each($ids)) AND reason = 'bounce'");
            remove.Set("$ids", json);
            return remove.ExecuteNonQuery();
        }, cancellationToken);
    }

    public Task<int> PruneAsync(DateTimeOffset now, CancellationToken cancellationToken) =>
        _database.WriteAsync(Durability.Durable, session =>
        {
            var prune = session.Command("DELETE FROM suppressions WHERE expires_at IS NOT NULL AND expires_at <= $now");
            prune.Set("$now", now.ToUnixTimeMilliseconds());
            return prune.ExecuteNonQuery();
        }, cancellationToken);

    public Task<IReadOnlyList<SuppressedAddress>> ListAsync(SuppressionQuery query, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfNegative(query.Limit);
        return _database.ReadAsync<IReadOnlyList<SuppressedAddress>>(session =>
        {
            var list = session.Command($"""
                SELECT {Columns} FROM suppressions
                WHERE (expires_at IS NULL OR expires_at > $now)
                  AND ($domain IS NULL OR domain = $domain)
                  AND ($reason IS NULL OR reason = $reason)
                  AND ($after IS NULL OR address > $after)
                ORDER BY address
                LIMIT $limit
                """);
            list.Set("$now", now.ToUnixTimeMilliseconds());
            list.Set("$domain", query.Domain);
            list.Set("$reason", query.Reason is { } reason ? reason.Name() : null);
            list.Set("$after", query.After);
            list.Set("$limit", query.Limit);
            var page = new List<SuppressedAddress>();
            using var reader = list.ExecuteReader();
            while (reader.Read())
                page.Add(Read(reader));
            return page;
        }, cancellationToken);
    }

    private static SuppressedAddress Read(Microsoft.Data.Sqlite.SqliteDataReader reader) => new(
        Address: reader.GetString(0),
        Reason: Enum.Parse<SuppressionReason>(reader.GetString(1), ignoreCase: true),
        Detail: reader.GetString(2),
        At: DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)),
        ExpiresAt: reader.IsDBNull(4) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)),
        MessageId: reader.IsDBNull(5) ? null : reader.GetString(5));
}
