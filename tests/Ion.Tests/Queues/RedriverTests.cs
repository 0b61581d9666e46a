using System.Diagnostics;
using Ion.Delivery;
using Ion.Log;
using Ion.Queues;
using Ion.Stores.Sqlite;
using Microsoft.Extensions.Options;

namespace Ion.Tests.Queues;

/// <summary>Redrive moves dead letters back at a bounded rate, telling how far it got, with fresh attempts.</summary>
public sealed class RedriverTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ion-redrive-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task RedriveOfEverything_GoesNoFasterThanTheRate_AndReportsProgress()
    {
        var token = TestContext.Current.CancellationToken;
        using var database = new SqliteDatabase(Path.Combine(_folder, "ion.db"));
        using var queue = new SqliteQueue(database, new SqliteQueueOptions(), TimeProvider.System);
        var log = new SqliteDeliveryLog(database, TimeProvider.System);
        const int count = 600;
        var ids = Enumerable.Range(0, count).Select(i => $"dead-{i:D3}").ToList();
        await queue.EnqueueAsync([.. ids.Select(id => new OutgoingMessage(id, "{}"))], token);
        for (var received = 0; received < count;)
        {
            var batch = await queue.ReceiveAsync(10, token);
            foreach (var message in batch)
            {
                await log.RecordAsync([new DeliveryEntry(message.Id, message.QueueMessageId, MessageState.Dead, null, [], 3, "gave up", FailureClass.Transient, "{}")], token);
                await queue.DeadLetterAsync(message, new DeadLetterNote("gave up", FailureClass.Transient, 3, 451), token);
            }
            received += batch.Count;
        }
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var redriver = new Redriver(queue, log,
            new Ion.Events.DeliveryEvents(null, Options.Create(new Ion.Events.EventsOptions()), Options.Create(new DeliveryOptions()), TimeProvider.System),
            Options.Create(new DeliveryOptions { RedrivePerSecond = 300 }), TimeProvider.System,
            new IonMetrics(services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
        List<int> reported = [];

        var took = Stopwatch.StartNew();
        var moved = await redriver.RedriveAsync(null, token, new SynchronousProgress(reported));
        took.Stop();

        Assert.Equal(ids, moved.Order());
        // Two slices of 300: the second waits until a second has passed.
        Assert.True(took.Elapsed >= TimeSpan.FromSeconds(0.95), $"600 at 300 per second took {took.Elapsed}");
        Assert.Equal([300, 600, 600], reported);
        // A redriven message counts its age from the redrive (the system clock here), so only the counts are compared.
        Assert.Equal(new QueueCounts(count, 0, 0), await queue.CountAsync(token) with { OldestEnqueuedAt = null });
        Assert.Empty(await log.ListDeadLettersAsync(new DeadLetterQuery(), token));
        Assert.Equal(0, (await log.GetAsync("dead-000", token))!.AttemptsUsed);
    }

    private sealed class SynchronousProgress(List<int> reported) : IProgress<int>
    {
        public void Report(int value) => reported.Add(value);
    }
}
