using Microsoft.Extensions.Options;

namespace Ion.Stores.Aws;

/// <summary>The <c>Ion:Aws</c> section: where the AWS store lives. Credentials come from the standard AWS chain
/// (environment, profile, instance or task role), never from ion's own files.</summary>
public sealed class AwsOptions
{
    public const string Section = "Ion:Aws";

    /// <summary>The region of the queue, topic and table, e.g. <c>eu-west-1</c>.</summary>
    public string? Region { get; set; }

    /// <summary>The input queue, e.g. <c>https://sqs.eu-west-1.amazonaws.com/123456789012/ion-mail</c>.</summary>
    public string? QueueUrl { get; set; }

    /// <summary>The dead-letter queue, with the input queue's redrive policy pointing at it.</summary>
    public string? DeadLetterQueueUrl { get; set; }

    /// <summary>The topic the input queue is subscribed to with raw delivery. ion publishes there (HTTP, <c>ion
    /// publish</c>); without it, ion sends straight to the queue.</summary>
    public string? TopicArn { get; set; }

    /// <summary>The S3 bucket for messages larger than SNS takes (256 KB): such a message is kept there and a pointer to
    /// it travels on the topic and queue, as AWS's extended client libraries do; ion deletes it once the message is sent.
    /// Unset: such a message is refused (413), and a pointer an application published is a dead letter.</summary>
    public string? PayloadBucket { get; set; }

    /// <summary>The delivery log's DynamoDB table.</summary>
    public string? TableName { get; set; }

    /// <summary>The suppression list's DynamoDB table. Without it the AWS store keeps no list: nothing is suppressed,
    /// and the start check warns.</summary>
    public string? SuppressionTable { get; set; }

    /// <summary>An endpoint for SQS and SNS other than AWS's (an emulator), e.g. <c>http://127.0.0.1:4566</c>.</summary>
    public string? ServiceUrl { get; set; }

    /// <summary>An endpoint for DynamoDB other than AWS's (an emulator), e.g. <c>http://127.0.0.1:4567</c>.</summary>
    public string? DynamoDbServiceUrl { get; set; }

    /// <summary>How often <c>ion serve</c> looks in the dead-letter queue for messages SQS moved there itself (the redrive
    /// policy's maxReceiveCount), to record and note them. Each look reads every dead letter once.</summary>
    public TimeSpan DeadLetterSweepInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long an idle worker's receive waits for a message (SQS's long poll, 0 to 20 s). SQS's longest by
    /// default: an idle worker asks three times a minute, and a message arriving meanwhile is answered at once. A stopping
    /// worker lets its poll end (a cancelled one would hide what it brings), so a graceful stop takes up to this long.</summary>
    public TimeSpan ReceiveWaitTime { get; set; } = TimeSpan.FromSeconds(20);

    // Feedback (issue 15): SES's bounce and complaint notifications.
    /// <summary>A queue subscribed (without raw delivery) to the SNS topic SES publishes bounces and complaints to;
    /// <c>ion serve</c> reads it into the suppression list, and the Lambda takes the records of an event source mapping
    /// on it, knowing them by this URL (<see cref="FeedbackQueue.IsSourceOf"/>). Unset: none is read.</summary>
    public string? FeedbackQueueUrl { get; set; }

    // Delivery events (issue 15).
    /// <summary>The SNS topic ion publishes its delivery events to (one message per event, its JSON with raw delivery,
    /// a <c>type</c> attribute to filter on). Unset: no events on this store.</summary>
    public string? EventsTopicArn { get; set; }

    /// <summary>By webhook name (<c>Ion:Events:Webhooks:NAME</c>): the SQS queue subscribed to the events topic with raw
    /// delivery that keeps that webhook's events until it takes them, with a redrive policy to its dead-letter queue
    /// (<c>ion aws provision --webhook NAME</c> creates both).</summary>
    public Dictionary<string, string> WebhookQueueUrls { get; set; } = new(StringComparer.Ordinal);
}

internal sealed class AwsOptionsValidator : IValidateOptions<AwsOptions>
{
    public ValidateOptionsResult Validate(string? name, AwsOptions o)
    {
        List<string> errors = [];
        if (string.IsNullOrWhiteSpace(o.Region))
            errors.Add("Ion:Aws:Region is not set (e.g. eu-west-1)");
        Url(errors, "QueueUrl", o.QueueUrl, required: true);
        Url(errors, "DeadLetterQueueUrl", o.DeadLetterQueueUrl, required: true);
        Url(errors, "ServiceUrl", o.ServiceUrl, required: false);
        Url(errors, "DynamoDbServiceUrl", o.DynamoDbServiceUrl, required: false);
        if (string.IsNullOrWhiteSpace(o.TableName))
            errors.Add("Ion:Aws:TableName is not set: name the delivery log's DynamoDB table (ion aws provision creates one)");
        if (!string.IsNullOrWhiteSpace(o.SuppressionTable) && o.SuppressionTable == o.TableName)
            errors.Add("Ion:Aws:SuppressionTable must not be the delivery log's table (Ion:Aws:TableName): the list has a table of its own");
        if (o.TopicArn is { Length: > 0 } arn && !arn.StartsWith("arn:", StringComparison.Ordinal))
            errors.Add($"Ion:Aws:TopicArn must be an SNS topic ARN like arn:aws:sns:eu-west-1:123456789012:ion-mail (is '{arn}')");
        if (o.DeadLetterSweepInterval < TimeSpan.FromSeconds(1))
            errors.Add($"Ion:Aws:DeadLetterSweepInterval must be at least 00:00:01 (is {o.DeadLetterSweepInterval})");
        if (o.ReceiveWaitTime < TimeSpan.Zero || o.ReceiveWaitTime > TimeSpan.FromSeconds(20))
            errors.Add($"Ion:Aws:ReceiveWaitTime must be from 00:00:00 to 00:00:20, SQS's long poll (is {o.ReceiveWaitTime})");
        if (!string.IsNullOrWhiteSpace(o.QueueUrl) && o.QueueUrl == o.DeadLetterQueueUrl)
            errors.Add("Ion:Aws:DeadLetterQueueUrl must not be the input queue (Ion:Aws:QueueUrl)");
        // Feedback (issue 15).
        Url(errors, "FeedbackQueueUrl", o.FeedbackQueueUrl, required: false);
        // By account and name, as the Lambda tells the queues' records apart: the input queue under another URL (a legacy
        // or VPC endpoint) would have its mail taken for unreadable notifications, and deleted.
        if (FeedbackQueue.AccountAndName(o.FeedbackQueueUrl) is { } feedback
            && (feedback == FeedbackQueue.AccountAndName(o.QueueUrl) || feedback == FeedbackQueue.AccountAndName(o.DeadLetterQueueUrl)))
            errors.Add("Ion:Aws:FeedbackQueueUrl must be a queue of its own, not the input or dead-letter queue");
        // Delivery events (issue 15).
        if (o.EventsTopicArn is { Length: > 0 } events && !events.StartsWith("arn:", StringComparison.Ordinal))
            errors.Add($"Ion:Aws:EventsTopicArn must be an SNS topic ARN like arn:aws:sns:eu-west-1:123456789012:ion-events (is '{events}')");
        if (!string.IsNullOrWhiteSpace(o.EventsTopicArn) && o.EventsTopicArn == o.TopicArn)
            errors.Add("Ion:Aws:EventsTopicArn must be a topic of its own: the input topic (Ion:Aws:TopicArn) takes messages to send");
        foreach (var (webhook, url) in o.WebhookQueueUrls)
        {
            Url(errors, $"WebhookQueueUrls:{webhook}", url, required: true);
            if (url == o.QueueUrl || url == o.DeadLetterQueueUrl || url == o.FeedbackQueueUrl)
                errors.Add($"Ion:Aws:WebhookQueueUrls:{webhook} must be a queue of its own, not the input, dead-letter or feedback queue");
        }
        if (o.WebhookQueueUrls.Count > 0 && string.IsNullOrWhiteSpace(o.EventsTopicArn))
            errors.Add("Ion:Aws:WebhookQueueUrls is set but Ion:Aws:EventsTopicArn is not: the webhooks' queues take their events from that topic");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void Url(List<string> errors, string key, string? value, bool required)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            if (required)
                errors.Add($"Ion:Aws:{key} is not set (ion aws provision prints it)");
            return;
        }
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            errors.Add($"Ion:Aws:{key} must be an http(s) URL (is '{value}')");
    }
}
