using System.Text.Json;
using Ion.Log;
using Ion.Queues;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Delivery;

/// <summary>A message stays hidden for as long as a worker holds it, whatever the relay's speed or the rate limit:
/// no duplicate without a crash (issue 7, item 1), and a graceful shutdown gives back everything held (item 11).</summary>
public class HeldMessagesTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SlowRelay_ABatchOutlivingTheVisibilityTimeout_IsSentOnce()
    {
        // Each message takes 0.4 s at the relay, so one slot's batch of 5 takes 2 s: twice the visibility timeout.
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.Slow(ScriptedStage.EndOfData, TimeSpan.FromMilliseconds(400)));
        await using var ion = await IonServer.StartAsync(relay.Port,
            "--Ion:Delivery:VisibilityTimeout=00:00:01", "--Ion:Delivery:Concurrency=2", "--Ion:Delivery:BatchSize=5");

        var ids = await PublishAllAsync(ion, 8);
        await AllSentAsync(ion, ids);
        await Task.Delay(1500, Token);   // time for a duplicate to show up

        AssertEachDeliveredOnce(relay, ids.Count);
    }

    [Fact]
    public async Task LowRateLimit_ABatchOutlivingTheVisibilityTimeout_IsSentOnce()
    {
        // 3 per second across two connections: 8 messages take about 2.5 s, the visibility timeout is 1 s.
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port,
            "--Ion:Delivery:VisibilityTimeout=00:00:01", "--Ion:Delivery:Concurrency=2", "--Ion:Delivery:RatePerSecond=3");

        var ids = await PublishAllAsync(ion, 8);
        await AllSentAsync(ion, ids);
        await Task.Delay(1500, Token);

        AssertEachDeliveredOnce(relay, ids.Count);
    }

    [Fact]
    public async Task Shutdown_WithARateLimit_GivesEveryHeldMessageBack()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        var ion = await IonServer.StartAsync(relay.Port,
            "--Ion:Delivery:RatePerSecond=0.5", "--Ion:Delivery:BatchSize=10", "--Ion:Delivery:VisibilityTimeout=00:10:00");
        var queue = ion.Services.GetRequiredService<IMessageQueue>();
        // One publish of five, so that one receive may take them all.
        var bodies = Enumerable.Range(0, 5).Select(i => JsonSerializer.Serialize(new { action = "send", recipient = "a@example.com", subject = $"rate {i}", body_text = "x" })).ToList();
        Assert.Empty((await ion.Services.GetRequiredService<Publisher>().PublishAsync(bodies, Token)).Errors);
        await relay.WaitForDeliveredAsync(1, Wait);

        await ion.App.StopAsync(Token);

        // Nothing is left hidden for the ten-minute visibility timeout: what was not sent is visible for the next start.
        var counts = await queue.CountAsync(Token);
        output.WriteLine($"delivered {relay.Delivered.Count}, counts {counts}");
        Assert.Equal(0, counts.Delayed);
        Assert.Equal(5 - relay.Delivered.Count, counts.Ready);
        await ion.DisposeAsync();
    }

    private static async Task<List<string>> PublishAllAsync(IonServer ion, int count)
    {
        List<string> ids = [];
        for (var i = 0; i < count; i++)
            ids.Add(await ion.PublishAsync(new { action = "send", recipient = $"r{i}@example.com", subject = $"held {i}", body_text = "x" }));
        return ids;
    }

    private static async Task AllSentAsync(IonServer ion, List<string> ids)
    {
        foreach (var id in ids)
            await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
    }

    private void AssertEachDeliveredOnce(ScriptedSmtpServer relay, int count)
    {
        var subjects = relay.Delivered.Select(t => t.ParseMessage().Subject).ToList();
        output.WriteLine($"delivered {subjects.Count}: {string.Join(", ", subjects.Order())}");
        Assert.Equal(count, subjects.Distinct().Count());
        Assert.Equal(count, subjects.Count);
    }
}
