using System.Text.Json.Nodes;
using Amazon.Runtime;
using Amazon.SQS.Model;
using Ion.Queues;
using Microsoft.Extensions.Options;

namespace Ion.Stores.Aws;

/// <summary>At <c>ion serve</c>'s start: the queues (the feedback queue too, when set), the tables, the topic and the
/// payload bucket exist
/// and may be used, and the input queue's redrive policy leads to the dead-letter queue. A missing resource or a refused
/// call fails with the setting's name; a redrive policy ion would not choose is logged as a warning, since SQS still
/// works with it, and so is a store without a suppression table (an older deployment still delivers, only without a
/// list).</summary>
internal sealed partial class AwsStoreCheck(AwsClients clients, IOptions<AwsOptions> options, ILogger<AwsStoreCheck> logger) : IStoreCheck
{
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        var aws = options.Value;
        List<string> errors = [];
        var queue = await AttributesAsync(errors, "QueueUrl", aws.QueueUrl!, cancellationToken);
        var deadLetters = await AttributesAsync(errors, "DeadLetterQueueUrl", aws.DeadLetterQueueUrl!, cancellationToken);
        await CheckAsync(errors, "TableName", $"the DynamoDB table '{aws.TableName}'",
            () => clients.DynamoDb.DescribeTableAsync(aws.TableName, cancellationToken), cancellationToken);
        if (string.IsNullOrWhiteSpace(aws.SuppressionTable))
            Log.NoSuppressionTable(logger);
        else
            await CheckAsync(errors, "SuppressionTable", $"the DynamoDB table '{aws.SuppressionTable}'",
                () => clients.DynamoDb.DescribeTableAsync(aws.SuppressionTable, cancellationToken), cancellationToken);
        // Missing, it would only fail the reader's every poll, a warning at a time, while ion looked started and well.
        if (!string.IsNullOrWhiteSpace(aws.FeedbackQueueUrl))
            await AttributesAsync(errors, "FeedbackQueueUrl", aws.FeedbackQueueUrl, cancellationToken);
        if (!string.IsNullOrWhiteSpace(aws.TopicArn))
            await TopicAsync(errors, "TopicArn", aws.TopicArn, cancellationToken);
        if (!string.IsNullOrWhiteSpace(aws.EventsTopicArn))
            await TopicAsync(errors, "EventsTopicArn", aws.EventsTopicArn, cancellationToken);
        if (clients.S3 is { } s3)
            await CheckAsync(errors, "PayloadBucket", $"the S3 bucket '{aws.PayloadBucket}'",
                () => s3.HeadBucketAsync(new Amazon.S3.Model.HeadBucketRequest { BucketName = aws.PayloadBucket }, cancellationToken), cancellationToken);
        foreach (var (webhook, url) in aws.WebhookQueueUrls)
        {
            if (await AttributesAsync(errors, $"WebhookQueueUrls:{webhook}", url, cancellationToken) is { } attributes
                && string.IsNullOrWhiteSpace(attributes.GetValueOrDefault("RedrivePolicy")))
                Log.NoWebhookDeadLetters(logger, webhook, url);
        }
        if (errors.Count > 0)
            throw new OptionsValidationException(AwsOptions.Section, typeof(AwsOptions), errors);
        if (queue is not null && deadLetters is not null)
            CheckRedrivePolicy(queue, deadLetters);
    }

    private Task TopicAsync(List<string> errors, string key, string topicArn, CancellationToken cancellationToken) =>
        CheckAsync(errors, key, $"the SNS topic {topicArn}", async () =>
        {
            if (!await clients.Sns.TopicExistsAsync(topicArn, cancellationToken))
                throw new SnsException("GetTopicAttributes", topicArn, "NotFound", "Topic does not exist", System.Net.HttpStatusCode.NotFound);
        }, cancellationToken);

    private void CheckRedrivePolicy(Dictionary<string, string> queue, Dictionary<string, string> deadLetters)
    {
        var policy = queue.TryGetValue("RedrivePolicy", out var text) && !string.IsNullOrWhiteSpace(text) ? JsonNode.Parse(text) : null;
        var target = policy?["deadLetterTargetArn"]?.GetValue<string>();
        var count = policy?["maxReceiveCount"] is { } n ? int.Parse(n.ToString(), System.Globalization.CultureInfo.InvariantCulture) : 0;
        if (policy is null)
            Log.NoRedrivePolicy(logger, options.Value.QueueUrl!);
        else if (target != deadLetters.GetValueOrDefault("QueueArn"))
            Log.RedriveElsewhere(logger, options.Value.QueueUrl!, target ?? "nothing", options.Value.DeadLetterQueueUrl!);
        else if (count < MinMaxReceiveCount)
            Log.LowMaxReceiveCount(logger, count, MinMaxReceiveCount);
    }

    /// <summary>Below this SQS's own count may dead-letter a healthy message that was handed back for later several
    /// times (a slow relay, a restart), before ion's attempts run out.</summary>
    private const int MinMaxReceiveCount = 10;

    private async Task<Dictionary<string, string>?> AttributesAsync(List<string> errors, string key, string url, CancellationToken cancellationToken)
    {
        Dictionary<string, string>? attributes = null;
        await CheckAsync(errors, key, $"the SQS queue {url}", async () =>
            attributes = (await clients.Sqs.GetQueueAttributesAsync(
                new GetQueueAttributesRequest { QueueUrl = url, AttributeNames = ["QueueArn", "RedrivePolicy"] }, cancellationToken)).Attributes ?? [],
            cancellationToken);
        return attributes;
    }

    private static async Task CheckAsync(List<string> errors, string key, string what, Func<Task> call, CancellationToken cancellationToken)
    {
        try
        {
            await call();
        }
        catch (Exception error) when (!cancellationToken.IsCancellationRequested && Refusal(error) is { } reason)
        {
            errors.Add($"{AwsOptions.Section}:{key}: {what} {reason}");
        }
        catch (Exception error) when (!cancellationToken.IsCancellationRequested && error is AmazonClientException or HttpRequestException or IOException)
        {
            throw new StoreUnavailableException($"{what} ({AwsOptions.Section}:{key}) did not answer: {error.Message}", error);
        }
    }

    /// <summary>What AWS said when it refused the call, or null when it did not answer at all.</summary>
    private static string? Refusal(Exception error) => error switch
    {
        QueueDoesNotExistException => "does not exist",
        Amazon.DynamoDBv2.Model.ResourceNotFoundException => "does not exist",
        SnsException { Code: "NotFound" } => "does not exist",
        SnsException sns => $"was refused: {sns.Code}: {sns.SnsMessage}",
        AmazonServiceException { StatusCode: System.Net.HttpStatusCode.NotFound } => "does not exist",
        AmazonServiceException aws when (int)aws.StatusCode is >= 400 and < 500 => $"was refused: {aws.ErrorCode}: {aws.Message}",
        _ => null,
    };

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Warning, Message = "Ion:Aws:SuppressionTable is not set: this store keeps no suppression list, so addresses the relay refused for good are mailed again. Set it to a table ion aws provision creates (PREFIX-suppressions).")]
        public static partial void NoSuppressionTable(ILogger logger);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook {Webhook}'s queue {QueueUrl} has no redrive policy: an event its receiver never takes is only logged when it dies, not kept. Give it a dead-letter queue (ion aws provision --webhook does).")]
        public static partial void NoWebhookDeadLetters(ILogger logger, string webhook, string queueUrl);

        [LoggerMessage(Level = LogLevel.Warning, Message = "The queue {QueueUrl} has no redrive policy: a message that crashes the worker every time will be received forever. Give it one to the dead-letter queue with maxReceiveCount 50 (ion aws provision does).")]
        public static partial void NoRedrivePolicy(ILogger logger, string queueUrl);

        [LoggerMessage(Level = LogLevel.Warning, Message = "The redrive policy of {QueueUrl} sends to {Target}, not to Ion:Aws:DeadLetterQueueUrl {DeadLetterQueueUrl}: messages SQS gives up on will not be listed by ion.")]
        public static partial void RedriveElsewhere(ILogger logger, string queueUrl, string target, string deadLetterQueueUrl);

        [LoggerMessage(Level = LogLevel.Warning, Message = "The input queue's maxReceiveCount is {Count}: every retry and release counts as a receive, so below {Minimum} SQS may dead-letter healthy mail before ion's attempts run out. 50 is ion's default.")]
        public static partial void LowMaxReceiveCount(ILogger logger, int count, int minimum);
    }
}
