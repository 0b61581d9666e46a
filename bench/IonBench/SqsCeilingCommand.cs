using System.Collections.Concurrent;
using System.CommandLine;
using System.Globalization;
using Amazon.SQS;
using Amazon.SQS.Model;
using Ion.Stores.Aws;

namespace IonBench;

/// <summary>
/// <c>ionbench sqs-ceiling</c>: the emulator's own ceiling for what ion's AWS path asks of it, with nothing of ion's
/// in between. N benchmark messages (the same JSON, each with ion's <c>ion-id</c> attribute) go in batches of ten,
/// <c>--in-flight</c> calls at a time, either straight to the queue (SendMessageBatch) or through the SNS topic the
/// queue is subscribed to with raw delivery (PublishBatch, with ion's own <see cref="SnsTopic"/>), while
/// <c>--loops</c> receive loops do what each of ion's worker slots does to the queue: ReceiveMessage (ten at most,
/// ion's long poll, visibility timeout and attributes), then DeleteMessageBatch, until N were received and deleted.
/// </summary>
/// <remarks>
/// The senders and the receive loops run side by side (pipelined), as <c>ion publish</c> and <c>ion serve</c> do in
/// the end-to-end run, and the figure is N / (first send → N deleted). <c>--phased</c> sends all N first and then
/// drains the queue, the clock running over both: the emulator then does the same work without overlap, which on
/// fauxqs is slower, so the pipelined figure is the higher (stricter) ceiling.
/// </remarks>
internal static class SqsCeilingCommand
{
    private const int BatchEntries = 10;
    private const string IdAttribute = "ion-id";
    private const string Wake = "ionbench: wake up";

    public static Command Create()
    {
        var serviceUrl = AwsBench.ServiceUrl("the SQS (and SNS) endpoint, e.g. http://127.0.0.1:4566");
        Option<string> queueUrl = new("--queue-url") { Description = "the queue to send to and receive from", Required = true };
        Option<string?> topicArn = new("--topic-arn")
        {
            Description = "publish through this SNS topic (PublishBatch) instead of sending to the queue; the queue must be subscribed to it with raw delivery",
        };
        var region = AwsBench.Region();
        Option<int> count = new("--count", "-n") { Description = "messages to send, receive and delete", Required = true };
        Option<int> loops = new("--loops") { Description = "receive loops side by side (ion's Delivery:Concurrency)", DefaultValueFactory = _ => 1 };
        Option<int> inFlight = new("--in-flight") { Description = "send (or publish) calls of ten in flight at once", DefaultValueFactory = _ => 16 };
        Option<bool> phased = new("--phased") { Description = "send all first, then receive (the default runs both side by side)" };
        Option<int> waitSeconds = new("--wait-seconds") { Description = "ReceiveMessage's long poll (ion's is 20)", DefaultValueFactory = _ => 20 };
        Option<int> warmup = new("--warmup") { Description = "messages through the same loop first, untimed", DefaultValueFactory = _ => 0 };
        Option<string> prefix = new("--id-prefix") { DefaultValueFactory = _ => "ceiling" };
        Option<int> timeout = new("--timeout-seconds") { DefaultValueFactory = _ => 600 };
        Command command = new("sqs-ceiling",
            "Send N messages to SQS (or publish them to the SNS topic) in batches of ten while L loops receive and delete them; prints start_ns, sent_ns, done_ns and the calls made")
        {
            serviceUrl, queueUrl, topicArn, region, count, loops, inFlight, phased, waitSeconds, warmup, prefix, timeout,
        };
        command.SetAction((parse, cancellationToken) => Run.Async(async () =>
        {
            var n = parse.GetValue(count);
            if (n < 1 || parse.GetValue(loops) < 1 || parse.GetValue(inFlight) < 1)
                throw new BenchFailure("--count, --loops and --in-flight must be at least 1");
            var url = parse.GetValue(serviceUrl)!;
            using var sqs = AwsBench.Sqs(url, parse.GetValue(region)!);
            using var sns = parse.GetValue(topicArn) is { Length: > 0 } ? new SnsTopic(parse.GetValue(region)!, url, AwsBench.Credentials()) : null;
            var round = new Round(sqs, sns, parse.GetValue(queueUrl)!, parse.GetValue(topicArn), parse.GetValue(loops), parse.GetValue(inFlight),
                parse.GetValue(phased), parse.GetValue(waitSeconds), TimeSpan.FromSeconds(parse.GetValue(timeout)));

            if (parse.GetValue(warmup) > 0)
                await round.RunAsync(parse.GetValue(prefix) + "-warm", parse.GetValue(warmup), cancellationToken);
            var cpu0 = AwsBench.CpuNanoseconds();
            var result = await round.RunAsync(parse.GetValue(prefix)!, n, cancellationToken);
            var cpu = AwsBench.CpuNanoseconds() - cpu0;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"start_ns={result.StartNs} sent_ns={result.SentNs} done_ns={result.DoneNs} received={result.Received} duplicates={result.Duplicates} "
                + $"send_calls={result.SendCalls} receive_calls={result.ReceiveCalls} empty_receives={result.EmptyReceives} delete_calls={result.DeleteCalls} cpu_ns={cpu}"));
        }));
        return command;
    }

    private sealed record Result(long StartNs, long SentNs, long DoneNs, int Received, int Duplicates, int SendCalls, int ReceiveCalls, int EmptyReceives, int DeleteCalls);

    private sealed class Round(AmazonSQSClient sqs, SnsTopic? sns, string queueUrl, string? topicArn, int loops, int inFlight, bool phased,
        int waitSeconds, TimeSpan timeout)
    {
        private int _sendCalls;
        private int _receiveCalls;
        private int _emptyReceives;
        private int _deleteCalls;
        private int _duplicates;
        private long _doneNs;
        private TaskCompletionSource _allSeen = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<Result> RunAsync(string idPrefix, int n, CancellationToken cancellationToken)
        {
            (_sendCalls, _receiveCalls, _emptyReceives, _deleteCalls, _duplicates, _doneNs) = (0, 0, 0, 0, 0, 0);
            _allSeen = new(TaskCreationOptions.RunContinuationsAsynchronously);
            // The JSON is made before the clock starts: in ion it is read from a file before publishing starts.
            var messages = Enumerable.Range(1, n).Select(i => BenchMessage.Id(idPrefix, i)).Select(id => (Id: id, Body: BenchMessage.Json(id))).ToList();
            var batches = messages.Chunk(BatchEntries).ToList();
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(timeout);
            ConcurrentDictionary<string, bool> seen = new(StringComparer.Ordinal);

            var start = Clock.NowUnixNanoseconds();
            var sentNs = 0L;
            async Task SendAllAsync()
            {
                await Parallel.ForEachAsync(batches, new ParallelOptions { MaxDegreeOfParallelism = inFlight, CancellationToken = limit.Token },
                    async (batch, token) => await SendAsync(batch, token));
                sentNs = Clock.NowUnixNanoseconds();
            }
            Task ReceiveAllAsync() => Task.WhenAll(Enumerable.Range(0, loops).Select(_ => Task.Run(() => ReceiveLoopAsync(n, seen, limit.Token), limit.Token)));

            if (phased)
            {
                await SendAllAsync();
                var receivers = ReceiveAllAsync();
                await Task.WhenAll(receivers, WakeAsync(receivers, limit.Token));
            }
            else
            {
                var receivers = ReceiveAllAsync();
                await Task.WhenAll(SendAllAsync(), receivers, WakeAsync(receivers, limit.Token));
            }
            return new Result(start, sentNs, _doneNs, seen.Count, _duplicates, _sendCalls, _receiveCalls, _emptyReceives, _deleteCalls);
        }

        /// <summary>Once all N are in, wakes the loops still waiting in a long poll with a message of no account. A long
        /// poll is not cancelled instead: fauxqs (like SQS) keeps a cancelled poll's waiter, which then takes messages
        /// of the next round and hides them for the visibility timeout.</summary>
        private async Task WakeAsync(Task receivers, CancellationToken limit)
        {
            await Task.WhenAny(_allSeen.Task, receivers);
            while (!receivers.IsCompleted)
            {
                await sqs.SendMessageAsync(new SendMessageRequest { QueueUrl = queueUrl, MessageBody = Wake }, limit);
                await Task.WhenAny(receivers, Task.Delay(TimeSpan.FromMilliseconds(50), limit));
            }
        }

        private async Task SendAsync((string Id, string Body)[] batch, CancellationToken token)
        {
            Interlocked.Increment(ref _sendCalls);
            if (sns is not null)
            {
                var refused = await sns.PublishBatchAsync(topicArn!,
                    [.. batch.Select((m, i) => new TopicEntry(Entry(i), m.Body, new Dictionary<string, string> { [IdAttribute] = m.Id }))], token);
                if (refused.Count > 0)
                    throw new BenchFailure($"SNS PublishBatch refused {refused.Count} entries: {refused.First().Value}");
                return;
            }
            var response = await sqs.SendMessageBatchAsync(new SendMessageBatchRequest
            {
                QueueUrl = queueUrl,
                Entries = [.. batch.Select((m, i) => new SendMessageBatchRequestEntry
                {
                    Id = Entry(i),
                    MessageBody = m.Body,
                    MessageAttributes = new() { [IdAttribute] = new MessageAttributeValue { DataType = "String", StringValue = m.Id } },
                })],
            }, token);
            if (response.Failed is { Count: > 0 } failed)
                throw new BenchFailure($"SQS SendMessageBatch refused {failed.Count} entries: {failed[0].Code}: {failed[0].Message}");
        }

        /// <summary>One of ion's worker slots as the queue sees it: receive up to ten (ion's request), delete them.</summary>
        private async Task ReceiveLoopAsync(int n, ConcurrentDictionary<string, bool> seen, CancellationToken limit)
        {
            var request = new ReceiveMessageRequest
            {
                QueueUrl = queueUrl,
                MaxNumberOfMessages = BatchEntries,
                WaitTimeSeconds = waitSeconds,
                VisibilityTimeout = 300,
                MessageSystemAttributeNames = ["ApproximateReceiveCount", "SentTimestamp"],
                MessageAttributeNames = ["All"],
            };
            while (seen.Count < n)
            {
                Interlocked.Increment(ref _receiveCalls);
                var received = (await sqs.ReceiveMessageAsync(request, limit)).Messages ?? [];
                if (received.Count == 0)
                {
                    Interlocked.Increment(ref _emptyReceives);
                    continue;
                }
                Interlocked.Increment(ref _deleteCalls);
                var deleted = await sqs.DeleteMessageBatchAsync(new DeleteMessageBatchRequest
                {
                    QueueUrl = queueUrl,
                    Entries = [.. received.Select((m, i) => new DeleteMessageBatchRequestEntry { Id = Entry(i), ReceiptHandle = m.ReceiptHandle })],
                }, limit);
                if (deleted.Failed is { Count: > 0 } failed)
                    throw new BenchFailure($"SQS DeleteMessageBatch refused {failed.Count} entries: {failed[0].Code}: {failed[0].Message}");
                foreach (var message in received)
                {
                    if (message.MessageAttributes?.GetValueOrDefault(IdAttribute)?.StringValue is not { } id)
                    {
                        if (message.Body == Wake)
                            continue;
                        throw new BenchFailure($"message {message.MessageId} arrived without its {IdAttribute} attribute");
                    }
                    if (!seen.TryAdd(id, true))
                        Interlocked.Increment(ref _duplicates);
                }
                if (seen.Count >= n && Interlocked.CompareExchange(ref _doneNs, Clock.NowUnixNanoseconds(), 0) == 0)
                    _allSeen.TrySetResult();
            }
        }

        private static string Entry(int index) => index.ToString(CultureInfo.InvariantCulture);
    }
}
