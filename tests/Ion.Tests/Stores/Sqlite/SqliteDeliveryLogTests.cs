using Ion.Log;
using Ion.Queues;
using Ion.Stores.Sqlite;
using Ion.Tests.Fixtures;
using Ion.Tests.Log;
using Microsoft.Extensions.Time.Testing;

namespace Ion.Tests.Stores.Sqlite;

public sealed class SqliteDeliveryLogTests : DeliveryLogContract, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ion-log-").FullName;
    private readonly List<SqliteDatabase> _databases = [];

    private string DatabasePath => Path.Combine(_folder, "ion.db");

    protected override Task<IDeliveryLog> CreateLogAsync()
    {
        var database = new SqliteDatabase(DatabasePath);
        _databases.Add(database);
        return Task.FromResult<IDeliveryLog>(new SqliteDeliveryLog(database, TimeProvider.System));
    }

    public void Dispose()
    {
        foreach (var database in _databases)
            database.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task AFileWrittenByThePreviousVersion_IsUpgraded_KeepingItsMessages()
    {
        // The schema and rows ion wrote before per-recipient outcomes, written by another process as they were.
        using (var old = Sqlite3Shell.Start(DatabasePath))
        {
            await old.RunAsync("""
                CREATE TABLE queue (seq INTEGER PRIMARY KEY, message_id TEXT NOT NULL, body TEXT NOT NULL, enqueued_at INTEGER NOT NULL,
                  visible_at INTEGER NOT NULL, receive_count INTEGER NOT NULL, attempts INTEGER NOT NULL, receipt TEXT);
                CREATE INDEX queue_visible_at ON queue (visible_at);
                CREATE TABLE dead_letters (seq INTEGER PRIMARY KEY, message_id TEXT NOT NULL, body TEXT NOT NULL, reason TEXT NOT NULL,
                  attempts INTEGER NOT NULL, enqueued_at INTEGER NOT NULL, dead_at INTEGER NOT NULL);
                CREATE TABLE messages (id TEXT PRIMARY KEY, state TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
                  last_reason TEXT) WITHOUT ROWID;
                CREATE TABLE attempts (id TEXT NOT NULL, at INTEGER NOT NULL, outcome TEXT NOT NULL, smtp_code INTEGER, reply TEXT NOT NULL,
                  duration_ms INTEGER NOT NULL);
                INSERT INTO queue VALUES (1, 'waiting', '{"w":1}', 1000, 1000, 0, 0, NULL);
                INSERT INTO queue VALUES (2, 'twice', '{"t":1}', 1000, 1000, 0, 0, NULL);
                INSERT INTO queue VALUES (3, 'twice', '{"t":2}', 1000, 1000, 0, 0, NULL);
                INSERT INTO queue VALUES (4, 'retrying', '{"r":1}', 1000, 1000, 2, 2, NULL);
                INSERT INTO dead_letters VALUES (1, 'dead', '{"d":1}', 'rejected: 550 5.1.1 No such user', 1, 1000, 2000);
                INSERT INTO messages VALUES ('waiting', 'queued', 1000, 1000, NULL);
                INSERT INTO messages VALUES ('retrying', 'retrying', 1000, 1500, '451 try later');
                INSERT INTO messages VALUES ('dead', 'dead', 1000, 2000, 'rejected: 550 5.1.1 No such user');
                INSERT INTO attempts VALUES ('retrying', 1100, 'retry', 451, '451 try later', 3);
                INSERT INTO attempts VALUES ('retrying', 1400, 'retry', 451, '451 try later', 3);
                INSERT INTO attempts VALUES ('dead', 1900, 'rejected', 550, '550 5.1.1 No such user', 3);
                """, Cancellation);
        }

        var log = await CreateLogAsync();
        using var queue = new SqliteQueue(_databases[^1], new SqliteQueueOptions(), TimeProvider.System);

        var retrying = await ClaimAsync(log, "retrying", "4");
        Assert.Equal(ClaimStatus.Claimed, retrying.Status);
        Assert.Equal(2, retrying.History.AttemptsUsed);
        // The attempts moved into the message's row, in order.
        var history = await log.GetAsync("retrying", Cancellation);
        Assert.Equal([(451, "451 try later"), (451, "451 try later")], history!.Attempts.Select(a => (a.SmtpCode!.Value, a.Reply)));
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1100), history.Attempts[0].At);
        var dead = Assert.Single(await log.ListDeadLettersAsync(new DeadLetterQuery(), Cancellation));
        Assert.Equal(("dead", "{\"d\":1}", "rejected: 550 5.1.1 No such user"), (dead.Id, dead.Body, dead.Reason));
        // One copy per id from now on: the second 'twice' went, and the queue takes new messages.
        var received = await queue.ReceiveAsync(10, Cancellation);
        Assert.Equal(["retrying", "twice", "waiting"], received.Select(m => m.Id).Order());
        Assert.Equal([EnqueueResult.Queued], await queue.EnqueueAsync([new OutgoingMessage("new", "{}")], Cancellation));
        Assert.Equal(["dead"], await queue.RedriveAsync(null, Cancellation));
        // The dashboard's index and table came with the upgrade; there was no per-minute history before.
        Assert.Equal(["dead"], (await log.ListRecentAsync(10, Cancellation))!.Select(r => r.Id));
        Assert.Empty((await log.GetThroughputAsync(DateTimeOffset.FromUnixTimeMilliseconds(0), Cancellation))!);
    }

    [Fact]
    public async Task TheFinishedMessagesIndex_FromBeforeSuppressedMessages_IsMadeAgain_AndTheDashboardsQueryUsesIt()
    {
        var log = await CreateLogAsync();
        await SendAsync(log, "a", "q-a");
        _databases[^1].Dispose();
        _databases.Clear();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        using (var old = Sqlite3Shell.Start(DatabasePath))
            await old.RunAsync("""
                DROP INDEX messages_finished;
                CREATE INDEX messages_finished ON messages (updated_at) WHERE state IN ('sent', 'dead');
                """, Cancellation);

        log = await CreateLogAsync();
        Assert.Equal(["a"], (await log.ListRecentAsync(10, Cancellation))!.Select(r => r.Id));
        using var shell = Sqlite3Shell.Start(DatabasePath);
        Assert.Contains("'suppressed'", string.Join("\n", await shell.RunAsync("SELECT sql FROM sqlite_master WHERE name = 'messages_finished';", Cancellation)), StringComparison.Ordinal);
        var plan = string.Join("\n", await shell.RunAsync(
            "EXPLAIN QUERY PLAN SELECT id FROM messages WHERE state IN ('sent', 'dead', 'suppressed') ORDER BY updated_at DESC, id DESC LIMIT 20;", Cancellation));
        Assert.Contains("messages_finished", plan, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Throughput_IsKeptPerMinuteOfTheLogsClock_AndPrunedWithTheMessages()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 9, 0, 42, TimeSpan.Zero));
        var database = new SqliteDatabase(DatabasePath);
        _databases.Add(database);
        var log = new SqliteDeliveryLog(database, time);
        await SendAsync(log, "old", "q1");
        time.Advance(TimeSpan.FromDays(31));
        await SendAsync(log, "new", "q2");
        await RetryAsync(log, "later", "q3");

        var all = await log.GetThroughputAsync(DateTimeOffset.FromUnixTimeMilliseconds(0), Cancellation);
        Assert.Equal(
            [(new DateTimeOffset(2026, 3, 1, 9, 0, 0, TimeSpan.Zero), 1, 0), (new DateTimeOffset(2026, 4, 1, 9, 0, 0, TimeSpan.Zero), 1, 1)],
            all!.Select(m => (m.Minute, m.Sent, m.Failed)));

        await log.PruneAsync(time.GetUtcNow() - TimeSpan.FromDays(30), Cancellation);

        Assert.Equal([new DateTimeOffset(2026, 4, 1, 9, 0, 0, TimeSpan.Zero)],
            (await log.GetThroughputAsync(DateTimeOffset.FromUnixTimeMilliseconds(0), Cancellation))!.Select(m => m.Minute));
    }
}
