using Ion.Log;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Delivery;

/// <summary>After the relay's 250, a store that is briefly unavailable delays the bookkeeping; it never causes a
/// second send (issue 7, item 3).</summary>
public class BookkeepingTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(40);
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task DatabaseLockedByAnotherProcess_LongerThanTheBusyTimeout_AfterA250_NothingIsSentAgain()
    {
        // The relay answers the data after half a second, so the lock is taken while a message is on the wire.
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.Slow(ScriptedStage.EndOfData, TimeSpan.FromMilliseconds(500)));
        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Delivery:VisibilityTimeout=00:00:03");
        List<string> ids = [];
        for (var i = 0; i < 3; i++)
            ids.Add(await ion.PublishAsync(new { action = "send", recipient = $"r{i}@example.com", subject = $"locked {i}", body_text = "x" }));
        await relay.WaitForTransactionsAsync(1, Wait);

        // Another process holds the write lock for 8 s: longer than ion's 5 s busy timeout, and than the visibility
        // timeout, so that only ion's retrying of its bookkeeping, with the messages kept hidden, avoids resending.
        using (var other = Sqlite3Shell.Start(Path.Combine(ion.DataDirectory, "ion.db")))
        {
            await other.RunAsync("BEGIN IMMEDIATE;", Token);
            await Task.Delay(TimeSpan.FromSeconds(8), Token);
            await other.RunAsync("COMMIT;", Token);
        }

        foreach (var id in ids)
            await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        await Task.Delay(2000, Token);
        var subjects = relay.Delivered.Select(t => t.ParseMessage().Subject).ToList();
        output.WriteLine($"delivered: {string.Join(", ", subjects)}");
        Assert.Equal(3, subjects.Count);
        Assert.Equal(3, subjects.Distinct().Count());
    }
}
