using Ion.Suppression;

namespace Ion.Stores.Aws;

/// <summary>
/// The SQS queue subscribed to SES's notification topic (<c>Ion:Aws:FeedbackQueueUrl</c>), and what ion does with one
/// message from it, whoever received it: <c>ion serve</c>'s <see cref="FeedbackQueueReader"/>, or the Lambda's event
/// source mapping.
/// </summary>
public sealed class FeedbackQueue(string? url, Feedback feedback)
{
    /// <summary>The queue's URL; null or empty when none is configured.</summary>
    public string? Url { get; } = string.IsNullOrWhiteSpace(url) ? null : url;

    /// <summary>Whether the store keeps a list to put the notifications on. Without one they must stay in the queue.</summary>
    public bool HasList => feedback.HasList;

    /// <summary>Takes one message: a notification's recipients go on the suppression list; SNS's subscription messages
    /// are logged with the URL to confirm; a body that is no SES notification can never become one, so it is logged
    /// (one line), counted and done with. Returns once the message may be deleted. Throws what the list throws: the
    /// message must then stay in the queue, to come again, so that nothing SES reported is lost.</summary>
    public async Task TakeAsync(string messageId, string? body, CancellationToken cancellationToken)
    {
        switch (SesNotifications.Read(body ?? ""))
        {
            case SesMessage.Notification notification:
                await feedback.TakeAsync(notification.Report, cancellationToken);
                break;
            case SesMessage.Subscription subscription:
                feedback.SubscriptionMessage(subscription.Type, subscription.TopicArn, subscription.SubscribeUrl);
                break;
            case SesMessage.Unreadable unreadable:
                feedback.Unreadable("ses", $"SQS message {messageId} on {Url}, deleted: {unreadable.Problem}");
                break;
            default:
                throw new InvalidOperationException("an SES message of an unknown kind");
        }
    }

    /// <summary>Whether a record Lambda's event source handed over came from this queue, by its
    /// <c>eventSourceARN</c>.</summary>
    /// <remarks>
    /// The record names its queue by ARN (<c>arn:PARTITION:sqs:REGION:ACCOUNT:NAME</c>), ion's setting by URL, which
    /// ends <c>/ACCOUNT/NAME</c> whatever its host (<c>sqs.REGION.amazonaws.com</c>, a legacy or VPC endpoint, an
    /// emulator). Comparing the account and the name is enough, and needs no call and no permission: an event source
    /// mapping only reads queues in the function's own region, and a queue's name is unique in its account and region.
    /// Building the whole ARN from the URL would have to guess the partition and the region (not every URL form names
    /// them), and looking it up with GetQueueAttributes would cost every cold start a call to SQS.
    /// </remarks>
    public bool IsSourceOf(string? eventSourceArn) =>
        eventSourceArn?.Split(':') is ["arn", _, "sqs", _, { Length: > 0 } account, { Length: > 0 } name]
        && AccountAndName(Url) == (account, name);

    /// <summary>The account and the name a queue URL ends with (<c>…/ACCOUNT/NAME</c>), or null.</summary>
    public static (string Account, string Name)? AccountAndName(string? queueUrl) =>
        Uri.TryCreate(queueUrl, UriKind.Absolute, out var uri)
        && uri.AbsolutePath.TrimEnd('/').Split('/') is [.., { Length: > 0 } account, { Length: > 0 } name]
            ? (account, name)
            : null;
}
