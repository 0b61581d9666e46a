using Amazon.SQS;
using Amazon.SQS.Model;
using Ion.Suppression;

namespace Ion.Stores.Aws;

/// <summary>
/// Reads the SQS queue subscribed to SES's notification topic (<c>Ion:Aws:FeedbackQueueUrl</c>): each bounce or
/// complaint goes to <see cref="Feedback"/>, and the message is deleted once the list has it. A list that cannot be
/// written leaves the message in the queue, to show again after <see cref="Visibility"/>: nothing SES reported is
/// lost. A message that is no SES notification can never become one, so it is logged (one line) and deleted rather
/// than received again and again. SNS's subscription messages are logged with the URL to confirm, and deleted.
/// </summary>
/// <remarks>As <see cref="SqsQueue"/>, a long poll is never cancelled (SQS would hand a poll whose client has gone the
/// next messages and hide them): a stop waits for the poll to end, and gives back at once whatever it brought.</remarks>
public sealed partial class FeedbackQueueReader(IAmazonSQS sqs, string? queueUrl, Feedback feedback, TimeProvider time, ILogger<FeedbackQueueReader> logger,
    TimeSpan? longPoll = null, TimeSpan? visibility = null) : BackgroundService
{
    private static readonly TimeSpan FirstPause = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LongestPause = TimeSpan.FromSeconds(30);

    private readonly int _waitSeconds = (int)(longPoll ?? TimeSpan.FromSeconds(20)).TotalSeconds;

    /// <summary>How long a received message stays hidden: a message not deleted by then (the list failed, the process
    /// died) is received again.</summary>
    public TimeSpan Visibility { get; } = visibility ?? TimeSpan.FromMinutes(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (string.IsNullOrWhiteSpace(queueUrl))
            return;
        if (!feedback.HasList)
        {
            // Read, the notifications would have nowhere to go: they wait in the queue for a version with a list.
            Log.NoList(logger, queueUrl);
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
                Log.ReadFailed(logger, queueUrl, error.GetType().Name, error.Message, pause.TotalSeconds);
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
            QueueUrl = queueUrl,
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
                QueueUrl = queueUrl,
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
                await HandleAsync(message);
                handled.Add(message);
            }
        }
        finally
        {
            if (handled.Count > 0)
            {
                await sqs.DeleteMessageBatchAsync(new DeleteMessageBatchRequest
                {
                    QueueUrl = queueUrl,
                    Entries = [.. handled.Select((m, i) => new DeleteMessageBatchRequestEntry { Id = $"{i}", ReceiptHandle = m.ReceiptHandle })],
                }, CancellationToken.None);
            }
        }
    }

    private async Task HandleAsync(Message message)
    {
        switch (SesNotifications.Read(message.Body ?? ""))
        {
            case SesMessage.Notification notification:
                await feedback.TakeAsync(notification.Report, CancellationToken.None);
                break;
            case SesMessage.Subscription subscription:
                feedback.SubscriptionMessage(subscription.Type, subscription.TopicArn, subscription.SubscribeUrl);
                break;
            case SesMessage.Unreadable unreadable:
                feedback.Unreadable("ses", $"SQS message {message.MessageId} on {queueUrl}, deleted: {unreadable.Problem}");
                break;
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
