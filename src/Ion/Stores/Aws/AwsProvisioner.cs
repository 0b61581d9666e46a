using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Amazon.DynamoDBv2;
using Amazon.S3;
using Amazon.S3.Model;
using Amazon.SQS;
using Amazon.SQS.Model;

namespace Ion.Stores.Aws;

/// <summary>What ion's AWS store runs on, by name and address: the settings <c>Ion:Aws:*</c> take. The feedback topic
/// and queue, the events topic and the webhooks' queues are there only when provisioning was asked for them.</summary>
public sealed record AwsResources(string QueueUrl, string DeadLetterQueueUrl, string TopicArn, string TableName, string SuppressionTable,
    string? FeedbackQueueUrl = null, string? FeedbackTopicArn = null, string? EventsTopicArn = null,
    IReadOnlyDictionary<string, string>? WebhookQueueUrls = null, string? PayloadBucket = null);

/// <summary>What to provision beyond the store itself: SES's feedback topic and queue (<c>Ion:Aws:FeedbackQueueUrl</c>),
/// the delivery events topic (<c>Ion:Aws:EventsTopicArn</c>), and a queue for each webhook by name
/// (<c>Ion:Aws:WebhookQueueUrls</c>; implies the events topic), and the S3 bucket for messages larger than SNS takes
/// (<c>Ion:Aws:PayloadBucket</c>).</summary>
public sealed record ProvisionExtras(bool Feedback = false, bool Events = false, IReadOnlyList<string>? Webhooks = null, bool Payloads = false);

/// <summary>The resources, and what provisioning had to do to get them (empty when everything was there already).</summary>
public sealed record AwsProvisioning(AwsResources Resources, IReadOnlyList<string> Changes);

/// <summary>
/// Creates what ion's AWS store needs and is missing, for development against the emulators and for users without
/// Terraform: the dead-letter queue <c>{prefix}-dead-letters</c>, the input queue <c>{prefix}-mail</c> (redrive policy,
/// visibility timeout, a policy letting the topic send to it), the topic <c>{prefix}-mail</c> with the queue subscribed
/// with raw delivery, and, when given DynamoDB, the delivery log's table <c>{prefix}-log</c> and the suppression list's
/// <c>{prefix}-suppressions</c>; when asked, the feedback topic <c>{prefix}-feedback</c> for SES to publish bounces and
/// complaints to, with the queue <c>{prefix}-feedback</c> subscribed to it. Existing resources are kept and only the
/// attributes ion depends on are set, so running it again changes nothing.
/// </summary>
public sealed partial class AwsProvisioner
{
    /// <summary>ion counts attempts in its own log and decides retries and dead letters itself; SQS's receive count also
    /// grows each time ion hands a message back for later (a retry, a rate limit), so a small count would dead-letter
    /// healthy mail. Only a message that kills its worker again and again, never completed nor handed back, should
    /// reach the dead-letter queue through SQS's count.</summary>
    public const int DefaultMaxReceiveCount = 50;

    /// <summary>Longer than one delivery takes, SMTP timeouts included (Ion:Delivery:VisibilityTimeout's default).</summary>
    public static readonly TimeSpan DefaultVisibilityTimeout = TimeSpan.FromMinutes(5);

    // SQS's longest: the one loss SQS itself inflicts is a message expiring, and a message moved to the dead-letter
    // queue keeps its first enqueue time, so the dead-letter queue must keep messages at least as long as the input queue.
    private static readonly string Retention = ((int)TimeSpan.FromDays(14).TotalSeconds).ToString(CultureInfo.InvariantCulture);

    private readonly IAmazonSQS _sqs;
    private readonly SnsTopic _sns;
    private readonly IAmazonDynamoDB? _dynamoDb;
    private readonly IAmazonS3? _s3;
    private readonly int _maxReceiveCount;
    private readonly TimeSpan _visibilityTimeout;

    /// <param name="dynamoDb">Where to create the tables (each with its store's own <c>CreateTableAsync</c>); when null
    /// they are only named.</param>
    /// <param name="s3">Where to create the payload bucket, when asked for (<see cref="ProvisionExtras.Payloads"/>).</param>
    public AwsProvisioner(IAmazonSQS sqs, SnsTopic sns, IAmazonDynamoDB? dynamoDb = null,
        int maxReceiveCount = DefaultMaxReceiveCount, TimeSpan? visibilityTimeout = null, IAmazonS3? s3 = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxReceiveCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxReceiveCount, 1000);
        _sqs = sqs;
        _sns = sns;
        _dynamoDb = dynamoDb;
        _s3 = s3;
        _maxReceiveCount = maxReceiveCount;
        _visibilityTimeout = visibilityTimeout ?? DefaultVisibilityTimeout;
        if (_visibilityTimeout < TimeSpan.Zero || _visibilityTimeout > TimeSpan.FromHours(12))
            throw new ArgumentOutOfRangeException(nameof(visibilityTimeout), "SQS takes 0 to 12 hours");
    }

    /// <summary>Why <paramref name="prefix"/> cannot name the resources, or null when it can: queue names take
    /// letters, digits, '-' and '_', at most 80 characters with the longest suffix.</summary>
    public static string? CheckPrefix(string prefix) =>
        PrefixPattern().IsMatch(prefix) ? null : $"the prefix must be 1 to 67 letters, digits, '-' or '_' (is '{prefix}')";

    public Task<AwsProvisioning> ProvisionAsync(string prefix, CancellationToken cancellationToken) =>
        ProvisionAsync(prefix, new ProvisionExtras(), cancellationToken);

    /// <param name="feedback">Also the feedback topic and queue (<c>Ion:Aws:FeedbackQueueUrl</c>).</param>
    public Task<AwsProvisioning> ProvisionAsync(string prefix, bool feedback, CancellationToken cancellationToken) =>
        ProvisionAsync(prefix, new ProvisionExtras(Feedback: feedback), cancellationToken);

    /// <summary>Why <paramref name="webhook"/> cannot name a webhook's queues under <paramref name="prefix"/>, or null.</summary>
    public static string? CheckWebhookName(string prefix, string webhook) =>
        !PrefixPattern().IsMatch(webhook) || WebhookQueueName(prefix, webhook).Length + DeadSuffix.Length > 80
            ? $"the webhook name must be letters, digits, '-' or '_', and {prefix}-webhook-NAME-dead at most 80 characters (is '{webhook}')"
            : null;

    private const string DeadSuffix = "-dead";

    private static string WebhookQueueName(string prefix, string webhook) => $"{prefix}-webhook-{webhook}";

    public async Task<AwsProvisioning> ProvisionAsync(string prefix, ProvisionExtras extras, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(extras);
        if (CheckPrefix(prefix) is { } invalid)
            throw new ArgumentException(invalid, nameof(prefix));
        var webhooks = extras.Webhooks ?? [];
        if (webhooks.Select(w => CheckWebhookName(prefix, w)).FirstOrDefault(e => e is not null) is { } badName)
            throw new ArgumentException(badName, nameof(extras));
        List<string> changes = [];

        var deadLetters = await EnsureQueueAsync($"{prefix}-dead-letters", new() { ["MessageRetentionPeriod"] = Retention },
            null, changes, cancellationToken);

        var topicName = $"{prefix}-mail";
        var topicArn = await EnsureTopicAsync(topicName, deadLetters.Arn, changes, cancellationToken);

        var mail = await EnsureQueueAsync($"{prefix}-mail", new()
        {
            ["VisibilityTimeout"] = ((int)_visibilityTimeout.TotalSeconds).ToString(CultureInfo.InvariantCulture),
            ["MessageRetentionPeriod"] = Retention,
            ["RedrivePolicy"] = new JsonObject { ["deadLetterTargetArn"] = deadLetters.Arn, ["maxReceiveCount"] = _maxReceiveCount }.ToJsonString(),
        }, queueArn => TopicSendsStatement(queueArn, topicArn), changes, cancellationToken);

        await EnsureRawSubscriptionAsync(topicArn, topicName, mail.Arn, $"{prefix}-mail", changes, cancellationToken);

        var tableName = $"{prefix}-log";
        var suppressionTable = $"{prefix}-suppressions";
        if (_dynamoDb is not null)
        {
            changes.AddRange(await DynamoDbDeliveryLog.CreateTableAsync(_dynamoDb, tableName, cancellationToken));
            changes.AddRange(await DynamoDbSuppressionList.CreateTableAsync(_dynamoDb, suppressionTable, cancellationToken));
        }

        var resources = new AwsResources(mail.Url, deadLetters.Url, topicArn, tableName, suppressionTable);
        if (extras.Feedback)
        {
            var (feedbackQueueUrl, feedbackTopicArn) = await EnsureFeedbackAsync(prefix, deadLetters.Arn, changes, cancellationToken);
            resources = resources with { FeedbackQueueUrl = feedbackQueueUrl, FeedbackTopicArn = feedbackTopicArn };
        }
        if (extras.Events || webhooks.Count > 0)
        {
            var eventsTopicArn = await EnsureTopicAsync($"{prefix}-events", deadLetters.Arn, changes, cancellationToken);
            Dictionary<string, string> queues = new(StringComparer.Ordinal);
            foreach (var webhook in webhooks.Distinct(StringComparer.Ordinal))
                queues[webhook] = await EnsureWebhookQueueAsync(WebhookQueueName(prefix, webhook), eventsTopicArn, changes, cancellationToken);
            resources = resources with { EventsTopicArn = eventsTopicArn, WebhookQueueUrls = queues.Count > 0 ? queues : null };
        }
        if (extras.Payloads)
            resources = resources with { PayloadBucket = await EnsurePayloadBucketAsync(prefix, deadLetters.Arn, changes, cancellationToken) };
        return new(resources, changes);
    }

    /// <summary>How long a large message's payload is kept in S3 before it expires: the queues' retention, so that a
    /// payload outlives every message or dead letter that points to it (ion deletes it sooner, once sent).</summary>
    public static readonly TimeSpan PayloadRetention = TimeSpan.FromDays(14);

    private const string PayloadRuleId = "ion-payloads-expire";

    /// <summary>The bucket name for <paramref name="prefix"/>: S3's names are global, so it carries the account and region
    /// (<c>{prefix}-payloads-{account}-{region}</c>, lower case, '_' as '-'); null when that is no valid bucket name.</summary>
    public static string? PayloadBucketName(string prefix, string account, string region)
    {
        var name = BucketName(prefix, account, region);
        return BucketPattern().IsMatch(name) ? name : null;
    }

    private static string BucketName(string prefix, string account, string region) =>
        $"{prefix.ToLowerInvariant().Replace('_', '-')}-payloads-{account}-{region}";

    /// <summary>Why <paramref name="prefix"/> cannot name the payload bucket in <paramref name="region"/>, or null (an
    /// account id is always 12 digits, so this can be asked before anything is created).</summary>
    public static string? CheckPayloadBucket(string prefix, string region) =>
        PayloadBucketName(prefix, "000000000000", region) is null
            ? $"{BucketName(prefix, "ACCOUNT", region)} is no valid S3 bucket name (at most 63 characters): use a shorter prefix"
            : null;

    /// <summary>The payload bucket, created when missing, with a rule expiring what ion did not delete (a message whose
    /// publish failed after its payload went up, a dead letter never redriven) after <see cref="PayloadRetention"/>, and
    /// uploads left unfinished after a day.</summary>
    private async Task<string> EnsurePayloadBucketAsync(string prefix, string anyQueueArn, List<string> changes, CancellationToken cancellationToken)
    {
        if (_s3 is null)
            throw new InvalidOperationException("no S3 client to create the payload bucket with");
        var arn = anyQueueArn.Split(':');
        var bucket = PayloadBucketName(prefix, arn[4], arn[3]) ?? throw new ArgumentException(CheckPayloadBucket(prefix, arn[3]), nameof(prefix));
        try
        {
            await _s3.HeadBucketAsync(new HeadBucketRequest { BucketName = bucket }, cancellationToken);
        }
        catch (AmazonS3Exception error) when (error.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            await _s3.PutBucketAsync(new PutBucketRequest { BucketName = bucket, UseClientRegion = true }, cancellationToken);
            changes.Add($"created bucket {bucket}");
        }
        var days = (int)PayloadRetention.TotalDays;
        LifecycleConfiguration? current = null;
        try
        {
            current = (await _s3.GetLifecycleConfigurationAsync(new GetLifecycleConfigurationRequest { BucketName = bucket }, cancellationToken)).Configuration;
        }
        catch (AmazonS3Exception error) when (error.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            // NoSuchLifecycleConfiguration: none yet.
        }
        var rules = current?.Rules ?? [];
        if (!rules.Exists(r => r.Id == PayloadRuleId && r.Expiration?.Days == days && r.Status == LifecycleRuleStatus.Enabled))
        {
            List<LifecycleRule> wanted = [.. rules.Where(r => r.Id != PayloadRuleId), new LifecycleRule
            {
                Id = PayloadRuleId,
                Status = LifecycleRuleStatus.Enabled,
                Filter = new LifecycleFilter { LifecycleFilterPredicate = new LifecyclePrefixPredicate { Prefix = "" } },
                Expiration = new LifecycleRuleExpiration { Days = days },
                AbortIncompleteMultipartUpload = new LifecycleRuleAbortIncompleteMultipartUpload { DaysAfterInitiation = 1 },
            }];
            await _s3.PutLifecycleConfigurationAsync(new PutLifecycleConfigurationRequest
            {
                BucketName = bucket,
                Configuration = new LifecycleConfiguration { Rules = wanted },
            }, cancellationToken);
            changes.Add($"set a lifecycle rule expiring objects after {days} days on bucket {bucket}");
        }
        return bucket;
    }

    /// <summary>A webhook's queue, subscribed to the events topic with raw delivery (the body is the event's JSON, the
    /// attributes ion's), with a dead-letter queue for events its receiver never took. ion decides when an event is
    /// dead (after <c>Ion:Events:RetryFor</c>), and every retry is a receive, so SQS's own count is SQS's highest, as a
    /// guard only; both keep events SQS's longest.</summary>
    private async Task<string> EnsureWebhookQueueAsync(string name, string eventsTopicArn, List<string> changes, CancellationToken cancellationToken)
    {
        var dead = await EnsureQueueAsync(name + DeadSuffix, new() { ["MessageRetentionPeriod"] = Retention }, null, changes, cancellationToken);
        var queue = await EnsureQueueAsync(name, new()
        {
            ["MessageRetentionPeriod"] = Retention,
            ["RedrivePolicy"] = new JsonObject { ["deadLetterTargetArn"] = dead.Arn, ["maxReceiveCount"] = 1000 }.ToJsonString(),
        }, queueArn => TopicSendsStatement(queueArn, eventsTopicArn), changes, cancellationToken);
        await EnsureRawSubscriptionAsync(eventsTopicArn, eventsTopicArn[(eventsTopicArn.LastIndexOf(':') + 1)..], queue.Arn, name, changes, cancellationToken);
        return queue.Url;
    }

    /// <summary>The queue subscribed to the topic with raw delivery: without it the queue would get SNS's JSON envelope
    /// instead of the message, and the attributes would stay inside it.</summary>
    private async Task EnsureRawSubscriptionAsync(string topicArn, string topicName, string queueArn, string queueName, List<string> changes,
        CancellationToken cancellationToken)
    {
        var subscription = await _sns.FindQueueSubscriptionAsync(topicArn, queueArn, cancellationToken);
        if (subscription is null)
        {
            await _sns.SubscribeQueueAsync(topicArn, queueArn, rawDelivery: true, cancellationToken);
            changes.Add($"subscribed queue {queueName} to topic {topicName} with raw delivery");
        }
        else if (!(await _sns.GetSubscriptionAttributesAsync(subscription, cancellationToken)).TryGetValue("RawMessageDelivery", out var raw) || raw != "true")
        {
            await _sns.SetSubscriptionAttributeAsync(subscription, "RawMessageDelivery", "true", cancellationToken);
            changes.Add($"turned on raw delivery for queue {queueName}'s subscription to topic {topicName}");
        }
    }

    /// <summary>The topic SES publishes bounces and complaints to (an identity's notification topic, or a configuration
    /// set's event destination) and the queue ion serve reads them from, subscribed as SES's topic is in AWS's own
    /// examples: without raw delivery, so the queue holds SNS's envelope (the reader takes either). No dead-letter
    /// queue: ion deletes what it cannot read, and what the list could not take comes back until it can.</summary>
    private async Task<(string QueueUrl, string TopicArn)> EnsureFeedbackAsync(string prefix, string anyQueueArn, List<string> changes,
        CancellationToken cancellationToken)
    {
        var name = $"{prefix}-feedback";
        var topicArn = await EnsureTopicAsync(name, anyQueueArn, changes, cancellationToken);
        var queue = await EnsureQueueAsync(name, new() { ["MessageRetentionPeriod"] = Retention },
            queueArn => TopicSendsStatement(queueArn, topicArn), changes, cancellationToken);
        if (await _sns.FindQueueSubscriptionAsync(topicArn, queue.Arn, cancellationToken) is null)
        {
            await _sns.SubscribeQueueAsync(topicArn, queue.Arn, rawDelivery: false, cancellationToken);
            changes.Add($"subscribed queue {name} to topic {name}");
        }
        return (queue.Url, topicArn);
    }

    /// <summary>The topic, created when missing. Its ARN differs from a queue's only in service and name (same
    /// partition, region and account), so whether it exists can be asked before CreateTopic, which answers the same
    /// either way.</summary>
    private async Task<string> EnsureTopicAsync(string name, string anyQueueArn, List<string> changes, CancellationToken cancellationToken)
    {
        var arn = anyQueueArn.Split(':');
        var expectedArn = string.Join(':', arn[0], arn[1], "sns", arn[3], arn[4], name);
        var existed = await _sns.TopicExistsAsync(expectedArn, cancellationToken);
        var topicArn = await _sns.CreateTopicAsync(name, cancellationToken);
        if (!existed || topicArn != expectedArn)
            changes.Add($"created topic {name}");
        return topicArn;
    }

    private sealed record Queue(string Url, string Arn);

    /// <summary>The queue, created with <paramref name="wanted"/> attributes when missing; an existing one gets those
    /// of them that differ. The policy statement names the queue's ARN, known only once the queue exists, so it is
    /// added to the queue's policy (or replaces an older one of ion's) after.</summary>
    private async Task<Queue> EnsureQueueAsync(string name, Dictionary<string, string> wanted, Func<string, JsonObject>? statement,
        List<string> changes, CancellationToken cancellationToken)
    {
        string url;
        var created = false;
        try
        {
            url = (await _sqs.GetQueueUrlAsync(name, cancellationToken)).QueueUrl;
        }
        catch (QueueDoesNotExistException)
        {
            url = (await _sqs.CreateQueueAsync(new CreateQueueRequest { QueueName = name, Attributes = wanted }, cancellationToken)).QueueUrl;
            created = true;
            changes.Add($"created queue {name}");
        }
        var current = (await _sqs.GetQueueAttributesAsync(new GetQueueAttributesRequest { QueueUrl = url, AttributeNames = ["All"] },
            cancellationToken)).Attributes ?? [];
        var arn = current.GetValueOrDefault("QueueArn") ?? throw new InvalidOperationException($"SQS gave no QueueArn for queue {name}");
        var differ = wanted.Where(a => !SameValue(current.GetValueOrDefault(a.Key), a.Value)).ToDictionary();
        if (statement is not null && WithStatement(current.GetValueOrDefault("Policy"), statement(arn)) is { } policy)
            differ["Policy"] = policy;
        if (differ.Count > 0)
        {
            await _sqs.SetQueueAttributesAsync(new SetQueueAttributesRequest { QueueUrl = url, Attributes = differ }, cancellationToken);
            if (!created)
                changes.Add($"set {string.Join(", ", differ.Keys)} on queue {name}");
        }
        return new Queue(url, arn);
    }

    /// <summary>Equal values; JSON compared as JSON, numbers as their text (SQS may give back <c>"maxReceiveCount":"50"</c>
    /// for 50, or its own formatting).</summary>
    private static bool SameValue(string? current, string wanted)
    {
        if (current == wanted)
            return true;
        if (current is null || !wanted.StartsWith('{'))
            return false;
        try
        {
            return JsonNode.DeepEquals(Normalize(JsonNode.Parse(current)), Normalize(JsonNode.Parse(wanted)));
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static JsonNode? Normalize(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.Select(p => KeyValuePair.Create(p.Key, Normalize(p.Value)))),
        JsonArray a => new JsonArray([.. a.Select(Normalize)]),
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => JsonValue.Create(v.ToJsonString()),
        _ => node?.DeepClone(),
    };

    /// <summary>The queue policy <paramref name="current"/> with <paramref name="statement"/> added, or replacing the
    /// statement with its Sid; null when it is there already. Other statements are kept.</summary>
    private static string? WithStatement(string? current, JsonObject statement)
    {
        JsonObject policy;
        try
        {
            policy = JsonNode.Parse(current ?? "{}") as JsonObject ?? [];
        }
        catch (JsonException)
        {
            policy = [];
        }
        List<JsonNode?> statements = policy["Statement"] switch
        {
            JsonArray array => [.. array.Select(s => s?.DeepClone())],
            JsonObject single => [single.DeepClone()],
            _ => [],
        };
        var sid = statement["Sid"]!.GetValue<string>();
        var ours = statements.FindIndex(s => s is JsonObject o && o["Sid"] is JsonValue v && v.GetValueKind() == JsonValueKind.String && v.GetValue<string>() == sid);
        if (ours >= 0 && SameValue(statements[ours]!.ToJsonString(), statement.ToJsonString()))
            return null;
        if (ours >= 0)
            statements[ours] = statement;
        else
            statements.Add(statement);
        policy["Version"] ??= "2012-10-17";
        policy["Statement"] = new JsonArray([.. statements]);
        return policy.ToJsonString();
    }

    /// <summary>Lets the topic send to the queue: real SNS needs it (the emulator does not check).</summary>
    private static JsonObject TopicSendsStatement(string queueArn, string topicArn) => new()
    {
        ["Sid"] = "ion-topic-sends",
        ["Effect"] = "Allow",
        ["Principal"] = new JsonObject { ["Service"] = "sns.amazonaws.com" },
        ["Action"] = "sqs:SendMessage",
        ["Resource"] = queueArn,
        ["Condition"] = new JsonObject { ["ArnEquals"] = new JsonObject { ["aws:SourceArn"] = topicArn } },
    };

    [GeneratedRegex("^[A-Za-z0-9_-]{1,67}$")]
    private static partial Regex PrefixPattern();

    // S3's rules for a bucket name, as far as ion's names can break them: 3 to 63 lower-case letters, digits and '-',
    // starting and ending with a letter or digit, not starting "xn--".
    [GeneratedRegex("^(?!xn--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")]
    private static partial Regex BucketPattern();
}
