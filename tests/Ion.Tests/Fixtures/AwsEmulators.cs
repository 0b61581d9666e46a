using Amazon.DynamoDBv2;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.SQS;
using Amazon.SQS.Model;
using Ion.Stores.Aws;

namespace Ion.Tests.Fixtures;

/// <summary>
/// ion's AWS store on emulators, on 127.0.0.1: fauxqs (SNS and SQS) and dynalite (DynamoDB), started once for a test
/// class and stopped by PID. Each test provisions its own topic, queues and table (<see cref="ProvisionAsync"/>) as
/// <c>ion aws provision</c> does, and runs ion with <see cref="Settings"/>. The emulators take any credentials; the
/// test process gets <c>test</c>/<c>test</c> in the standard chain's environment variables, which the ion processes
/// it starts inherit.
/// </summary>
public sealed class AwsEmulators : IAsyncLifetime
{
    public const string Region = "us-east-1";

    private NodeTool? _fauxqs;
    private NodeTool? _dynalite;
    private readonly string _dynamoDbRequests = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"ion-dynalite-requests-{Guid.NewGuid():N}");
    private long _countedListTables;

    public string SqsUrl => _fauxqs?.Url ?? throw new InvalidOperationException("fauxqs has not started");

    public string DynamoDbUrl => _dynalite?.Url ?? throw new InvalidOperationException("dynalite has not started");

    public AmazonSQSClient Sqs { get; private set; } = null!;

    public AmazonDynamoDBClient DynamoDb { get; private set; } = null!;

    public SnsTopic Sns { get; private set; } = null!;

    /// <summary>fauxqs's S3, on the same endpoint as SNS and SQS (by path: no names per bucket on 127.0.0.1).</summary>
    public AmazonS3Client S3 { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", "test");
        Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", "test");
        var starting = new[] { NodeTool.StartFauxqsAsync(), NodeTool.StartDynaliteAsync(_dynamoDbRequests) };
        try
        {
            await Task.WhenAll(starting);
        }
        finally
        {
            _fauxqs = starting[0].IsCompletedSuccessfully ? starting[0].Result : null;
            _dynalite = starting[1].IsCompletedSuccessfully ? starting[1].Result : null;
        }
        var credentials = new BasicAWSCredentials("test", "test");
        Sqs = new AmazonSQSClient(credentials, new AmazonSQSConfig { ServiceURL = SqsUrl, AuthenticationRegion = Region });
        DynamoDb = new AmazonDynamoDBClient(credentials, new AmazonDynamoDBConfig { ServiceURL = DynamoDbUrl, AuthenticationRegion = Region });
        Sns = new SnsTopic(Region, SqsUrl, credentials);
        S3 = new AmazonS3Client(credentials, new AmazonS3Config { ServiceURL = SqsUrl, AuthenticationRegion = Region, ForcePathStyle = true });
    }

    /// <summary>A topic, the input queue subscribed to it with raw delivery, the dead-letter queue and the tables, all
    /// new (a prefix of their own); with <paramref name="feedback"/>, SES's feedback topic and queue too; with
    /// <paramref name="events"/> the events topic, and a queue on it for each of <paramref name="webhooks"/>; with
    /// <paramref name="payloads"/> the bucket for large messages.</summary>
    public async Task<AwsResources> ProvisionAsync(int maxReceiveCount = AwsProvisioner.DefaultMaxReceiveCount, TimeSpan? visibilityTimeout = null,
        bool feedback = false, bool events = false, IReadOnlyList<string>? webhooks = null, bool payloads = false)
    {
        var provisioner = new AwsProvisioner(Sqs, Sns, DynamoDb, maxReceiveCount, visibilityTimeout, S3);
        var prefix = $"t{Guid.NewGuid():N}"[..12];
        return (await provisioner.ProvisionAsync(prefix, new ProvisionExtras(feedback, events, webhooks, payloads), TestContext.Current.CancellationToken)).Resources;
    }

    /// <summary>The keys in a bucket now.</summary>
    public async Task<List<string>> KeysAsync(string bucket) =>
        [.. ((await S3.ListObjectsV2Async(new Amazon.S3.Model.ListObjectsV2Request { BucketName = bucket }, TestContext.Current.CancellationToken)).S3Objects ?? [])
            .Select(o => o.Key)];

    /// <summary>The settings that run ion on <paramref name="resources"/>, as <c>--Key=value</c> arguments.</summary>
    public string[] Settings(AwsResources resources, bool throughTopic = true) =>
    [
        "--Ion:Store=Aws",
        $"--Ion:Aws:Region={Region}",
        $"--Ion:Aws:QueueUrl={resources.QueueUrl}",
        $"--Ion:Aws:DeadLetterQueueUrl={resources.DeadLetterQueueUrl}",
        $"--Ion:Aws:TableName={resources.TableName}",
        $"--Ion:Aws:SuppressionTable={resources.SuppressionTable}",
        $"--Ion:Aws:ServiceUrl={SqsUrl}",
        $"--Ion:Aws:DynamoDbServiceUrl={DynamoDbUrl}",
        // A short long poll: every ion a test stops waits for its poll to end, 20 s by default.
        "--Ion:Aws:ReceiveWaitTime=00:00:01",
        .. throughTopic ? [$"--Ion:Aws:TopicArn={resources.TopicArn}"] : Array.Empty<string>(),
        .. resources.FeedbackQueueUrl is { } feedback ? [$"--Ion:Aws:FeedbackQueueUrl={feedback}"] : Array.Empty<string>(),
        .. resources.EventsTopicArn is { } events ? [$"--Ion:Aws:EventsTopicArn={events}"] : Array.Empty<string>(),
        .. resources.PayloadBucket is { } bucket ? [$"--Ion:Aws:PayloadBucket={bucket}"] : Array.Empty<string>(),
        .. (resources.WebhookQueueUrls ?? new Dictionary<string, string>()).Select(w => $"--Ion:Aws:WebhookQueueUrls:{w.Key}={w.Value}"),
    ];

    /// <summary>A new queue subscribed to the topic with raw delivery, to see what was published there.</summary>
    public async Task<string> ObserveAsync(string topicArn)
    {
        var token = TestContext.Current.CancellationToken;
        var url = (await Sqs.CreateQueueAsync($"o{Guid.NewGuid():N}"[..12], token)).QueueUrl;
        var arn = (await Sqs.GetQueueAttributesAsync(new GetQueueAttributesRequest { QueueUrl = url, AttributeNames = ["QueueArn"] }, token))
            .Attributes["QueueArn"];
        await Sns.SubscribeQueueAsync(topicArn, arn, rawDelivery: true, token);
        return url;
    }

    /// <summary>Every message visible on a queue now, each received once and then made visible again at once, so that
    /// ion (a redrive, a receive) finds them as they were.</summary>
    public async Task<List<Message>> PeekAllAsync(string queueUrl)
    {
        List<Message> all = [];
        try
        {
            return await ReceiveAllAsync(queueUrl, all);
        }
        finally
        {
            foreach (var chunk in all.Chunk(10))
            {
                await Sqs.ChangeMessageVisibilityBatchAsync(new ChangeMessageVisibilityBatchRequest
                {
                    QueueUrl = queueUrl,
                    Entries = [.. chunk.Select((m, i) => new ChangeMessageVisibilityBatchRequestEntry { Id = $"{i}", ReceiptHandle = m.ReceiptHandle, VisibilityTimeout = 0 })],
                }, CancellationToken.None);
            }
        }
    }

    private async Task<List<Message>> ReceiveAllAsync(string queueUrl, List<Message> all)
    {
        while (true)
        {
            var received = await Sqs.ReceiveMessageAsync(new ReceiveMessageRequest
            {
                QueueUrl = queueUrl,
                MaxNumberOfMessages = 10,
                VisibilityTimeout = 30,
                WaitTimeSeconds = 0,
                MessageAttributeNames = ["All"],
                MessageSystemAttributeNames = ["All"],
            }, TestContext.Current.CancellationToken);
            if (received.Messages is not { Count: > 0 } messages)
                return all;
            all.AddRange(messages);
        }
    }

    /// <summary>The requests dynalite has served so far, by operation ("PutItem", "UpdateItem"…), as its preload
    /// (bench/count-requests.cjs, the same bench/run uses) counts them. The preload writes its counts every 200 ms, so
    /// a ListTables of this method's own goes first (ion never lists tables), and the counts are read once they
    /// include it: every request dynalite took before it is counted then.</summary>
    public async Task<IReadOnlyDictionary<string, long>> DynamoDbRequestsAsync()
    {
        await DynamoDb.ListTablesAsync(TestContext.Current.CancellationToken);
        var listed = Interlocked.Increment(ref _countedListTables);
        Dictionary<string, long> counts = [];
        await IonServer.WaitUntilAsync(() =>
        {
            counts = File.Exists(_dynamoDbRequests)
                ? File.ReadAllLines(_dynamoDbRequests)
                    .Select(line => line.Split(' '))
                    .ToDictionary(parts => parts[0], parts => long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture))
                : [];
            return Task.FromResult(counts.GetValueOrDefault("ListTables") >= listed);
        }, "dynalite's request counts include the last request");
        return counts;
    }

    public async ValueTask DisposeAsync()
    {
        Sqs?.Dispose();
        DynamoDb?.Dispose();
        Sns?.Dispose();
        S3?.Dispose();
        if (_fauxqs is not null)
            await _fauxqs.DisposeAsync();
        if (_dynalite is not null)
            await _dynalite.DisposeAsync();
        File.Delete(_dynamoDbRequests);
    }
}
