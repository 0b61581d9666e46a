using Amazon.SQS;
using Amazon.SQS.Model;

namespace Ion.Stores.Aws;

/// <summary>
/// <c>ion serve</c>'s reader of the SQS queue subscribed to SES's notification topic (<c>Ion:Aws:FeedbackQueueUrl</c>):
/// each message goes to <see cref="FeedbackQueue.TakeAsync"/> (what the Lambda does with the same queue's records),
/// and is deleted once taken. A list that cannot be written leaves the message in the queue, to show again after
/// <see cref="Visibility"/>: nothing SES reported is lost. A message that is no SES notification is taken as done (it
/// can never become one) and deleted rather than received again and again.
/// </summary>
/// <remarks>As <see cref="SqsQueue"/>, a long poll is never cancelled (SQS would hand a poll whose client has gone the
/// next messages and hide them): a stop waits for the poll to end, and gives back at once whatever it brought.</remarks>
public sealed partial class FeedbackQueueReader(IAmazonSQS sqs, FeedbackQueue queue, TimeProvider time, ILogger<FeedbackQueueReader> logger,
    TimeSpan? longPoll = null, TimeSpan? visibility = null) : BackgroundService
{
    private static readonly TimeSpan FirstPause = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LongestPause = TimeSpan.FromSeconds(30);

    private readonly string? _queueUrl = queue.Url;

    private readonly int _waitSeconds = (int)(longPoll ?? TimeSpan.FromSeconds(20)).TotalSeconds;

    /// <summary>How long a received message stays hidden: a message not deleted by then (the list failed, the process
    /// died) is received again.</summary>
    public TimeSpan Visibility { get; } = visibility ?? TimeSpan.FromMinutes(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_queueUrl is null)
            return;
        if (!queue.HasList)
        {
            // Read, the notifications would have nowhere to go: they wait in the queue for a version with a list.
            Log.NoList(logger, _queueUrl);
            return;
        }
        var pause = FirstPause;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ReadAsync(stoppingToken);
                pause = FirstPause;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            // SQS or the list failing is not a bug, and a bug in one message must not stop the others: the messages not
            // deleted come back after the visibility timeout, so nothing is dropped by going on.
            catch (Exception error)
            {
                Log.ReadFailed(logger, _queueUrl, error.GetType().Name, error.Message, pause.TotalSeconds);
                try
                {
                    await Task.Delay(pause, time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                pause = pause * 2 < LongestPause ? pause * 2 : LongestPause;
            }
        }
    }

    /// <summary>One long poll and what it brought.</summary>
    private async Task ReadAsync(CancellationToken stoppingToken)
    {
        var request = new ReceiveMessageRequest
        {
            QueueUrl = _queueUrl,
            MaxNumberOfMessages = 10,
            WaitTimeSeconds = _waitSeconds,
            VisibilityTimeout = (int)Visibility.TotalSeconds,
        };
        var received = (await sqs.ReceiveMessageAsync(request, CancellationToken.None)).Messages ?? [];
        if (received.Count == 0)
            return;
        if (stoppingToken.IsCancellationRequested)
        {
            await sqs.ChangeMessageVisibilityBatchAsync(new ChangeMessageVisibilityBatchRequest
            {
                QueueUrl = _queueUrl,
                Entries = [.. received.Select((m, i) => new ChangeMessageVisibilityBatchRequestEntry { Id = $"{i}", ReceiptHandle = m.ReceiptHandle, VisibilityTimeout = 0 })],
            }, CancellationToken.None);
            stoppingToken.ThrowIfCancellationRequested();
        }
        List<Message> handled = [];
        try
        {
            // Each message finishes whatever the host says meanwhile (one list write): a stop is seen at the next poll.
            foreach (var message in received)
            {
                await queue.TakeAsync(message.MessageId, message.Body, CancellationToken.None);
                handled.Add(message);
            }
        }
        finally
        {
            if (handled.Count > 0)
            {
                await sqs.DeleteMessageBatchAsync(new DeleteMessageBatchRequest
                {
                    QueueUrl = _queueUrl,
                    Entries = [.. handled.Select((m, i) => new DeleteMessageBatchRequestEntry { Id = $"{i}", ReceiptHandle = m.ReceiptHandle })],
                }, CancellationToken.None);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(311, LogLevel.Error, "Ion:Aws:FeedbackQueueUrl is set ({QueueUrl}), but the AWS store keeps no suppression list without Ion:Aws:SuppressionTable: the feedback queue is not read, and its notifications wait there")]
        public static partial void NoList(ILogger logger, string queueUrl);

        // The reason, not a stack trace: the messages stay in the queue, and the next try says whether it lasts.
        [LoggerMessage(312, LogLevel.Warning, "Could not read the feedback queue {QueueUrl} ({Error}: {Reason}); what was not taken comes back, trying again in {Seconds} s")]
        public static partial void ReadFailed(ILogger logger, string queueUrl, string error, string reason, double seconds);
    }
}
