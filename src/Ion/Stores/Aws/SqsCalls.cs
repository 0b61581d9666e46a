using System.Globalization;
using System.Net.Sockets;
using Amazon.Runtime;
using Amazon.SQS;
using Amazon.SQS.Model;
using Ion.Queues;

namespace Ion.Stores.Aws;

/// <summary>The SQS calls ion's queues share (the mail queue and its dead letters, the webhooks' queues): a receive whose
/// long poll is never cancelled, batch calls on receipt handles, counts, and SQS's failures as
/// <see cref="StoreUnavailableException"/>.</summary>
/// <remarks>A long poll is never cancelled. SQS goes on with a poll whose client has gone and hands it the next
/// messages, which then stay hidden for the whole visibility timeout (aws/aws-sdk-net#1680 and aws/aws-sdk-go-v2#2068,
/// seen on AWS; fauxqs does the same). So a receive asked to stop waits for its poll to end (at most the poll's wait),
/// gives back at once whatever the poll brought, and only then throws <see cref="OperationCanceledException"/>.</remarks>
internal sealed class SqsCalls(IAmazonSQS sqs)
{
    public const string SentTimestamp = "SentTimestamp";
    public const string ReceiveCount = "ApproximateReceiveCount";
    public const string Visible = "ApproximateNumberOfMessages";
    public const string NotVisible = "ApproximateNumberOfMessagesNotVisible";
    public const string Delayed = "ApproximateNumberOfMessagesDelayed";

    /// <summary>SQS takes ten entries per batch call.</summary>
    public const int BatchEntries = 10;

    /// <summary>One receive. Its long poll is not cancelled (see the remarks above): asked to stop while it waits, it
    /// waits on until the poll ends, gives back what the poll brought (visible again at once), then throws.</summary>
    public async Task<List<Message>> ReceiveAsync(string queueUrl, int maxMessages, int waitSeconds, int visibilitySeconds, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var request = new ReceiveMessageRequest
        {
            QueueUrl = queueUrl,
            MaxNumberOfMessages = maxMessages,
            WaitTimeSeconds = waitSeconds,
            VisibilityTimeout = visibilitySeconds,
            MessageSystemAttributeNames = [ReceiveCount, SentTimestamp],
            MessageAttributeNames = ["All"],
        };
        // The poll ends by itself within its wait; the SDK's HTTP timeout bounds a connection that hangs.
        var response = await CallAsync("ReceiveMessage", queueUrl, token => sqs.ReceiveMessageAsync(request, token), CancellationToken.None);
        // AWSSDK v4 answers null, not an empty list, when nothing arrived.
        var received = response.Messages ?? [];
        if (cancellationToken.IsCancellationRequested)
        {
            // Whoever asked has stopped: nothing was claimed, so back at once, for another worker to take.
            if (received.Count > 0)
                await ChangeVisibilityAsync(queueUrl, [.. received.Select(m => m.ReceiptHandle)], 0, CancellationToken.None);
            cancellationToken.ThrowIfCancellationRequested();
        }
        return received;
    }


    public Task<bool[]> ChangeVisibilityAsync(string queueUrl, IReadOnlyList<string> handles, int seconds, CancellationToken cancellationToken) =>
        PerHandleAsync("ChangeMessageVisibilityBatch", queueUrl, handles, async (entries, token) =>
        {
            var request = new ChangeMessageVisibilityBatchRequest
            {
                QueueUrl = queueUrl,
                Entries = [.. entries.Select(e => new ChangeMessageVisibilityBatchRequestEntry { Id = e.Id, ReceiptHandle = e.Handle, VisibilityTimeout = seconds })],
            };
            return (await sqs.ChangeMessageVisibilityBatchAsync(request, token)).Failed;
        }, cancellationToken);

    public async Task DeleteAsync(string queueUrl, IReadOnlyList<string> handles, CancellationToken cancellationToken) =>
        await PerHandleAsync("DeleteMessageBatch", queueUrl, handles, async (entries, token) =>
        {
            var request = new DeleteMessageBatchRequest
            {
                QueueUrl = queueUrl,
                Entries = [.. entries.Select(e => new DeleteMessageBatchRequestEntry { Id = e.Id, ReceiptHandle = e.Handle })],
            };
            return (await sqs.DeleteMessageBatchAsync(request, token)).Failed;
        }, cancellationToken);

    /// <summary>Runs a batch call on receipt handles, ten at a time, and says per handle whether SQS took it. An
    /// entry refused as the sender's fault has a stale receipt (the message is someone else's now, or gone): false.
    /// An entry that failed on SQS's side is tried once more, then makes the store unavailable.</summary>
    private static async Task<bool[]> PerHandleAsync(
        string operation,
        string queueUrl,
        IReadOnlyList<string> handles,
        Func<IEnumerable<(string Id, string Handle)>, CancellationToken, Task<List<BatchResultErrorEntry>?>> call,
        CancellationToken cancellationToken)
    {
        var taken = new bool[handles.Count];
        for (var start = 0; start < handles.Count; start += BatchEntries)
        {
            List<int> pending = [.. Enumerable.Range(start, Math.Min(BatchEntries, handles.Count - start))];
            for (var attempt = 1; pending.Count > 0; attempt++)
            {
                var entries = pending.Select(i => (EntryId(i), handles[i]));
                var failed = (await CallAsync(operation, queueUrl, token => call(entries, token), cancellationToken) ?? [])
                    .ToDictionary(f => int.Parse(f.Id, CultureInfo.InvariantCulture));
                foreach (var i in pending)
                    taken[i] = !failed.ContainsKey(i);
                var serviceFaults = failed.Where(f => f.Value.SenderFault != true).ToList();
                if (serviceFaults.Count > 0 && attempt == 2)
                    throw new StoreUnavailableException(
                        $"SQS {operation} on queue {queueUrl} failed: {serviceFaults[0].Value.Code}: {serviceFaults[0].Value.Message}");
                pending = [.. serviceFaults.Select(f => f.Key)];
            }
        }
        return taken;
    }


    public async Task<Dictionary<string, string>> AttributesAsync(string queueUrl, IReadOnlyList<string> names, CancellationToken cancellationToken)
    {
        var request = new GetQueueAttributesRequest { QueueUrl = queueUrl, AttributeNames = [.. names] };
        var response = await CallAsync("GetQueueAttributes", queueUrl, token => sqs.GetQueueAttributesAsync(request, token), cancellationToken);
        return response.Attributes ?? [];
    }

    public static long Count(Dictionary<string, string> attributes, string name) =>
        attributes.TryGetValue(name, out var value) ? long.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture) : 0;

    /// <summary>Turns what the service or the network does into <see cref="StoreUnavailableException"/>; the caller's
    /// cancellation passes through.</summary>
    public static async Task<T> CallAsync<T>(string operation, string queueUrl, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        // An OperationCanceledException the caller did not ask for is the HTTP client's timeout.
        catch (Exception error) when (error is AmazonServiceException or AmazonClientException or HttpRequestException
            or IOException or SocketException or TimeoutException or OperationCanceledException)
        {
            throw new StoreUnavailableException($"SQS {operation} on queue {queueUrl} failed: {error.Message}", error);
        }
    }

    public static string EntryId(int index) => index.ToString(CultureInfo.InvariantCulture);
}
