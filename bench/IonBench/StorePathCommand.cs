using System.CommandLine;
using System.Globalization;
using Ion.Log;
using Ion.Queues;
using Ion.Stores.Sqlite;

namespace IonBench;

/// <summary>
/// <c>ionbench store-path</c>: ion's SQLite store alone (queue and delivery log in one file, as <c>ion serve</c> opens
/// them), doing for N queued messages the store calls a delivery slot makes, with no SMTP: per batch of ten a receive
/// and a claim, per message its outcome (sent), per batch the completion; in <c>--loops</c> loops side by side as
/// ion's slots. The most ion's one-machine delivery can do with its store, as <c>send-path</c> is for its SMTP client.
/// </summary>
internal static class StorePathCommand
{
    public static Command Create()
    {
        Option<string> folder = new("--data") { Description = "an empty folder for ion.db", Required = true };
        Option<int> count = new("--count", "-n") { Required = true };
        Option<int> loops = new("--loops") { Description = "delivery loops side by side (ion's Delivery:Concurrency)", DefaultValueFactory = _ => 1 };
        Option<int> warmup = new("--warmup") { Description = "messages the same way first, untimed", DefaultValueFactory = _ => 0 };
        Command command = new("store-path", "Queue N messages in ion's SQLite store, then receive, claim, record sent and complete them as ion's slots do; prints start_ns, done_ns, cpu_ns")
        {
            folder, count, loops, warmup,
        };
        command.SetAction((parse, cancellationToken) => Run.Async(async () =>
        {
            using var database = new SqliteDatabase(Path.Combine(parse.GetValue(folder)!, "ion.db"));
            using var queue = new SqliteQueue(database, new SqliteQueueOptions { VisibilityTimeout = TimeSpan.FromMinutes(5), ReceiveWaitTime = TimeSpan.Zero }, TimeProvider.System);
            var log = new SqliteDeliveryLog(database, TimeProvider.System);
            var slots = parse.GetValue(loops);
            if (parse.GetValue(warmup) > 0)
                await RoundAsync("warm", parse.GetValue(warmup));
            var cpu0 = AwsBench.CpuNanoseconds();
            var start = Clock.NowUnixNanoseconds();
            await RoundAsync("timed", parse.GetValue(count));
            var done = Clock.NowUnixNanoseconds();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"start_ns={start} done_ns={done} cpu_ns={AwsBench.CpuNanoseconds() - cpu0}"));

            async Task RoundAsync(string idPrefix, int n)
            {
                // Queued untimed, as ion publish would have.
                foreach (var chunk in Enumerable.Range(1, n).Select(i => BenchMessage.Id(idPrefix, i)).Chunk(1000))
                {
                    await log.RecordQueuedAsync(chunk, Clock.Now(), cancellationToken);
                    await queue.EnqueueAsync([.. chunk.Select(id => new OutgoingMessage(id, BenchMessage.Json(id)))], cancellationToken);
                }
                await Task.WhenAll(Enumerable.Range(0, slots).Select(_ => Task.Run(DeliverAsync, cancellationToken)));
            }

            async Task DeliverAsync()
            {
                while (true)
                {
                    var batch = await queue.ReceiveAsync(10, cancellationToken);
                    if (batch.Count == 0)
                        return;
                    var claims = await log.ClaimAsync([.. batch.Select(m => new ClaimRequest(m.Id, m.QueueMessageId, m.EnqueuedAt))], TimeSpan.FromHours(1), cancellationToken);
                    if (claims.FirstOrDefault(c => c.Status != ClaimStatus.Claimed) is { } refused)
                        throw new BenchFailure($"message {refused.Id}: claim {refused.Status}");
                    foreach (var message in batch)
                    {
                        const string reply = "2.0.0 Ok: queued as 4f1b2c3d";
                        await log.RecordAsync([new DeliveryEntry(message.Id, message.QueueMessageId, MessageState.Sent,
                            new DeliveryAttempt(Clock.Now(), "sent", 250, reply, TimeSpan.FromMilliseconds(1)),
                            [new RecipientStatus("rcpt@example.com", RecipientState.Sent, 250, reply)], 1)], cancellationToken);
                    }
                    await queue.CompleteAsync(batch, cancellationToken);
                }
            }
        }));
        return command;
    }
}
