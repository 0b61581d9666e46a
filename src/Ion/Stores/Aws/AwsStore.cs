using Amazon;
using Amazon.DynamoDBv2;
using Amazon.Runtime;
using Amazon.Runtime.Credentials;
using Amazon.S3;
using Amazon.SQS;
using Ion.Delivery;
using Ion.Events;
using Ion.Log;
using Ion.Queues;
using Ion.Suppression;
using Microsoft.Extensions.Options;

namespace Ion.Stores.Aws;

public static class AwsStore
{
    /// <summary>SQS's longest visibility timeout.</summary>
    public static readonly TimeSpan MaxVisibilityTimeout = TimeSpan.FromHours(12);

    /// <summary>The AWS store (<c>Ion:Store</c> = <c>Aws</c>): the queue and its dead letters in SQS, publishing through
    /// the SNS topic when <c>Ion:Aws:TopicArn</c> is set, the delivery log in DynamoDB, whose TTL expires finished
    /// messages (so no pruner runs), and the suppression list in a DynamoDB table of its own when
    /// <c>Ion:Aws:SuppressionTable</c> is set (see <see cref="DynamoDbSuppressionList"/> for why not the log's), and delivery
    /// events on the SNS topic <c>Ion:Aws:EventsTopicArn</c>, with each webhook's in a queue of its own
    /// (<see cref="AwsEventOutbox"/>).</summary>
    public static IServiceCollection AddAws(this IServiceCollection services)
    {
        services.AddOptions<AwsOptions>().BindConfiguration(AwsOptions.Section).Checked<AwsOptions, AwsOptionsValidator>();
        services.AddSingleton(sp => AwsClients.Create(sp.GetRequiredService<IOptions<AwsOptions>>().Value));
        services.AddSingleton(sp =>
        {
            var aws = sp.GetRequiredService<IOptions<AwsOptions>>().Value;
            var delivery = sp.GetRequiredService<IOptions<DeliveryOptions>>().Value;
            if (delivery.VisibilityTimeout > MaxVisibilityTimeout)
            {
                throw new OptionsValidationException(DeliveryOptions.Section, typeof(DeliveryOptions),
                    [$"Ion:Delivery:VisibilityTimeout must be at most 12:00:00 with Ion:Store Aws, SQS's limit (is {delivery.VisibilityTimeout})"]);
            }
            var clients = sp.GetRequiredService<AwsClients>();
            return new SqsQueue(clients.Sqs, aws.QueueUrl!, aws.DeadLetterQueueUrl!,
                new SqsQueueOptions { VisibilityTimeout = delivery.VisibilityTimeout, ReceiveWaitTime = aws.ReceiveWaitTime },
                sp.GetRequiredService<TimeProvider>(),
                string.IsNullOrWhiteSpace(aws.TopicArn) ? null : new TopicRoute(clients.Sns, aws.TopicArn),
                sp.GetService<IEventOutbox>(),
                clients.Payloads);
        });
        services.AddSingleton<IMessageQueue>(sp => sp.GetRequiredService<SqsQueue>());
        // A slot asked to stop during a long poll waits for it to end: SqsQueue never cancels one (SQS would hide what
        // it brings for the visibility timeout), so the host's stop must outlast the poll.
        services.AddOptions<HostOptions>().Configure<IOptions<AwsOptions>>((host, aws) => host.AllowStopFor(aws.Value.ReceiveWaitTime));
        services.AddSingleton<IDeliveryLog>(sp => new DynamoDbDeliveryLog(
            sp.GetRequiredService<AwsClients>().DynamoDb,
            sp.GetRequiredService<IOptions<AwsOptions>>().Value.TableName!,
            sp.GetRequiredService<IOptions<DeliveryOptions>>().Value.LogRetention,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<IEventOutbox>(),
            sp.GetRequiredService<AwsClients>().Payloads));
        // Delivery events when there is a topic for them; without one the factory gives null, which DeliveryEvents takes
        // for no outbox: no events are made at all.
        services.AddSingleton<IEventOutbox>(sp =>
        {
            var aws = sp.GetRequiredService<IOptions<AwsOptions>>().Value;
            if (string.IsNullOrWhiteSpace(aws.EventsTopicArn))
                return null!;
            var clients = sp.GetRequiredService<AwsClients>();
            return new AwsEventOutbox(clients.Sns, aws.EventsTopicArn, clients.Sqs, aws.WebhookQueueUrls, sp.GetRequiredService<TimeProvider>());
        });
        services.AddSingleton<IValidateOptions<EventsOptions>>(sp => new AwsWebhooksValidator(sp.GetRequiredService<IOptions<AwsOptions>>()));
        // Without a table the factory gives null, which Suppressions takes for no list: nothing suppressed, the API's 501.
        services.AddSingleton<ISuppressionList>(sp =>
            sp.GetRequiredService<IOptions<AwsOptions>>().Value.SuppressionTable is { Length: > 0 } table
                ? new DynamoDbSuppressionList(sp.GetRequiredService<AwsClients>().DynamoDb, table)
                : null!);
        services.AddSingleton<IStoreCheck, AwsStoreCheck>();
        // Only a started host (ion serve) runs it; the Lambda sweeps between batches.
        services.AddSingleton<DeadLetterSweeper>();
        services.AddHostedService(sp => sp.GetRequiredService<DeadLetterSweeper>());
        // SES's notifications: read by ion serve's reader, or handed to the Lambda by its event source.
        services.AddSingleton(sp => new FeedbackQueue(sp.GetRequiredService<IOptions<AwsOptions>>().Value.FeedbackQueueUrl,
            sp.GetRequiredService<Suppression.Feedback>()));
        services.AddHostedService(sp => new FeedbackQueueReader(sp.GetRequiredService<AwsClients>().Sqs, sp.GetRequiredService<FeedbackQueue>(),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<FeedbackQueueReader>>(),
            sp.GetRequiredService<IOptions<AwsOptions>>().Value.ReceiveWaitTime));
        return services;
    }
}

/// <summary>The SDK clients for <see cref="AwsOptions"/>: SQS, DynamoDB and ion's own SNS caller, with credentials
/// from the standard AWS chain (environment, profile, web identity, container or instance role).</summary>
public sealed class AwsClients : IDisposable
{
    private readonly AWSCredentials _credentials;
    private readonly RegionEndpoint _region;
    private readonly string? _serviceUrl;

    private AwsClients(AmazonSQSClient sqs, AmazonDynamoDBClient dynamoDb, SnsTopic sns, AmazonS3Client? s3, string? payloadBucket,
        AWSCredentials credentials, RegionEndpoint region, string? serviceUrl)
    {
        _credentials = credentials;
        _region = region;
        _serviceUrl = serviceUrl;
        Sqs = sqs;
        DynamoDb = dynamoDb;
        Sns = sns;
        S3 = s3;
        Payloads = s3 is null ? null : new S3Payloads(s3, payloadBucket!);
    }

    public AmazonSQSClient Sqs { get; }

    public AmazonDynamoDBClient DynamoDb { get; }

    public SnsTopic Sns { get; }

    /// <summary>Only with <c>Ion:Aws:PayloadBucket</c>.</summary>
    public AmazonS3Client? S3 { get; }

    public S3Payloads? Payloads { get; }

    /// <exception cref="OptionsValidationException">No region, or no credentials anywhere in the chain.</exception>
    public static AwsClients Create(AwsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.Region))
            throw Invalid("Ion:Aws:Region is not set (e.g. eu-west-1)");
        AWSCredentials credentials;
        try
        {
            credentials = DefaultAWSCredentialsIdentityResolver.GetCredentials();
        }
        catch (AmazonClientException)
        {
            throw Invalid("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role"
                + " (ion reads them from the standard AWS chain, never from its own settings)");
        }
        var region = RegionEndpoint.GetBySystemName(options.Region);
        return new AwsClients(
            new AmazonSQSClient(credentials, Configure(new AmazonSQSConfig(), region, options.ServiceUrl)),
            new AmazonDynamoDBClient(credentials, Configure(new AmazonDynamoDBConfig(), region, options.DynamoDbServiceUrl)),
            // SNS in the topic's own region, which the ARN says (arn:aws:sns:REGION:ACCOUNT:NAME).
            new SnsTopic(options.TopicArn?.Split(':') is [_, _, "sns", { Length: > 0 } topicRegion, ..] ? topicRegion : options.Region,
                options.ServiceUrl, credentials),
            string.IsNullOrWhiteSpace(options.PayloadBucket) ? null : NewS3(credentials, region, options.ServiceUrl),
            options.PayloadBucket, credentials, region, options.ServiceUrl);
    }

    /// <summary>An S3 client whatever the settings say (<c>ion aws provision --payloads</c>, before there is a bucket).</summary>
    public AmazonS3Client NewS3Client() => NewS3(_credentials, _region, _serviceUrl);

    // S3 on the same endpoint as SQS and SNS when there is one (an emulator), by path: an emulator on 127.0.0.1 has no
    // name for each bucket.
    private static AmazonS3Client NewS3(AWSCredentials credentials, RegionEndpoint region, string? serviceUrl) =>
        new(credentials, Configure(new AmazonS3Config { ForcePathStyle = !string.IsNullOrWhiteSpace(serviceUrl) }, region, serviceUrl));

    private static T Configure<T>(T config, RegionEndpoint region, string? serviceUrl) where T : ClientConfig
    {
        if (string.IsNullOrWhiteSpace(serviceUrl))
        {
            config.RegionEndpoint = region;
        }
        else
        {
            config.ServiceURL = serviceUrl;
            config.AuthenticationRegion = region.SystemName;
        }
        return config;
    }

    private static OptionsValidationException Invalid(string error) => new(AwsOptions.Section, typeof(AwsOptions), [error]);

    public void Dispose()
    {
        Sqs.Dispose();
        DynamoDb.Dispose();
        Sns.Dispose();
        S3?.Dispose();
    }
}

/// <summary>On the AWS store a webhook's events wait in a queue of its own, which must be named.</summary>
internal sealed class AwsWebhooksValidator(IOptions<AwsOptions> aws) : IValidateOptions<EventsOptions>
{
    public ValidateOptionsResult Validate(string? name, EventsOptions options)
    {
        var queues = aws.Value.WebhookQueueUrls;
        List<string> errors = [.. options.Webhooks.Keys.Where(w => !queues.ContainsKey(w)).Select(w =>
            $"{AwsOptions.Section}:WebhookQueueUrls:{w} is not set: on the AWS store webhook {w}'s events wait in an SQS queue subscribed to "
            + $"{AwsOptions.Section}:EventsTopicArn (ion aws provision --webhook {w} creates both)")];
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
