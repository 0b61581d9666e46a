using System.CommandLine;
using System.Globalization;
using System.Threading.Channels;
using Ion.Log;
using Ion.Queues;
using Ion.Stores.Aws;

namespace IonBench;

/// <summary>
/// <c>ionbench log-path</c>: ion's DynamoDB delivery log alone, doing for N messages the writes ion's AWS path does,
/// with ion's own <see cref="DynamoDbDeliveryLog"/> and nothing else (no SQS, no SNS, no SMTP): what <c>ion publish</c>
/// does per batch of 1,000 (<c>IDeliveryLog.RecordQueuedAsync</c> with the copies named: one conditional PutItem per
/// id, 16 at a time, which also records each copy's claim), then, in <c>--loops</c> loops side by side as ion's worker
/// slots, per ten messages a claim by those copies (<see cref="IDeliveryLog.ClaimAsync"/>: one consistent GetItem per
/// id, since the publish claimed them) and per message its outcome, sent
/// (<see cref="IDeliveryLog.RecordAsync"/>: one UpdateItem), one message after the other. It is the most ion's AWS
/// path can do with its delivery log on this DynamoDB endpoint, as <c>send-path</c> is for its SMTP client.
/// </summary>
internal static class LogPathCommand
{
    // ion publish's batch, and what a worker slot receives at once (Delivery:BatchSize).
    private const int PublishBatch = 1000;
    private const int ReceiveBatch = 10;

    public static Command Create()
    {
        var serviceUrl = AwsBench.ServiceUrl("the DynamoDB endpoint, e.g. http://127.0.0.1:4567");
        Option<string> table = new("--table") { Description = "the delivery log's table (ion aws provision creates it)", Required = true };
        var region = AwsBench.Region();
        Option<int> count = new("--count", "-n") { Required = true };
        Option<int> loops = new("--loops") { Description = "delivery loops side by side (ion's Delivery:Concurrency)", DefaultValueFactory = _ => 1 };
        Option<int> warmup = new("--warmup") { Description = "messages the same way first, untimed", DefaultValueFactory = _ => 0 };
        Option<string> prefix = new("--id-prefix") { DefaultValueFactory = _ => "log" };
        Command command = new("log-path", "Record N messages queued, claimed and sent in ion's DynamoDB delivery log, as ion does; prints start_ns, done_ns, cpu_ns")
        {
            serviceUrl, table, region, count, loops, warmup, prefix,
        };
        command.SetAction((parse, cancellationToken) => Run.Async(async () =>
        {
            using var dynamo = AwsBench.DynamoDb(parse.GetValue(serviceUrl)!, parse.GetValue(region)!);
            var log = new DynamoDbDeliveryLog(dynamo, parse.GetValue(table)!, TimeSpan.FromDays(30), TimeProvider.System);
            var slots = parse.GetValue(loops);
            if (parse.GetValue(warmup) > 0)
                await RoundAsync(parse.GetValue(prefix) + "-warm", parse.GetValue(warmup));
            var cpu0 = AwsBench.CpuNanoseconds();
            var start = Clock.NowUnixNanoseconds();
            await RoundAsync(parse.GetValue(prefix)!, parse.GetValue(count));
            var done = Clock.NowUnixNanoseconds();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"start_ns={start} done_ns={done} cpu_ns={AwsBench.CpuNanoseconds() - cpu0}"));

            async Task RoundAsync(string idPrefix, int n)
            {
                var queue = Channel.CreateUnbounded<(string Id, string Copy)>();
                var ids = Enumerable.Range(1, n).Select(i => BenchMessage.Id(idPrefix, i)).ToList();
                async Task PublishAsync()
                {
                    foreach (var batch in ids.Chunk(PublishBatch))
                    {
                        // Named as ion publish names them.
                        var copies = batch.Select(_ => OutgoingMessage.NewCopy()).ToArray();
                        var known = await log.RecordQueuedAsync(batch, copies, Clock.Now(), cancellationToken);
                        if (known.Count > 0)
                            throw new BenchFailure($"the log knew {known.Count} of the ids already (a table used before?)");
                        foreach (var (id, copy) in batch.Zip(copies))
                            queue.Writer.TryWrite((id, copy));
                    }
                    queue.Writer.Complete();
                }
                await Task.WhenAll([PublishAsync(), .. Enumerable.Range(0, slots).Select(_ => Task.Run(() => DeliverAsync(queue.Reader), cancellationToken))]);
            }

            async Task DeliverAsync(ChannelReader<(string Id, string Copy)> queue)
            {
                while (await queue.WaitToReadAsync(cancellationToken))
                {
                    List<ClaimRequest> batch = [];
                    while (batch.Count < ReceiveBatch && queue.TryRead(out var message))
                        batch.Add(new ClaimRequest(message.Id, message.Copy, Clock.Now()));
                    if (batch.Count == 0)
                        continue;
                    var claims = await log.ClaimAsync(batch, TimeSpan.FromHours(1), cancellationToken);
                    if (claims.FirstOrDefault(c => c.Status != ClaimStatus.Claimed) is { } refused)
                        throw new BenchFailure($"message {refused.Id}: claim {refused.Status}");
                    foreach (var request in batch)
                    {
                        const string reply = "2.0.0 Ok: queued as 4f1b2c3d";
                        var at = Clock.Now();
                        await log.RecordAsync([new DeliveryEntry(request.Id, request.Holder, MessageState.Sent,
                            new DeliveryAttempt(at, "sent", 250, reply, TimeSpan.FromMilliseconds(1)),
                            [new RecipientStatus("rcpt@example.com", RecipientState.Sent, 250, reply)], 1)], cancellationToken);
                    }
                }
            }
        }));
        return command;
    }
}
