using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using Amazon.SQS;
using Amazon.SQS.Model;
using Ion.Events;
using Ion.Queues;

namespace Ion.Stores.Aws;

/// <summary>
/// The AWS store's event outbox: the SNS events topic (<c>Ion:Aws:EventsTopicArn</c>) that every event is published to
/// once, and, for each webhook, an SQS queue subscribed to that topic with raw delivery (<c>Ion:Aws:WebhookQueueUrls</c>)
/// that keeps the webhook's events until it took them. SNS makes each webhook's copy (and any other subscriber's, the
/// AWS way), so the topic gets every event type and a webhook's <c>Types</c> filter is applied when its events are taken.
/// </summary>
/// <remarks>
/// <para>An outcome's events are published before its record is written (<see cref="DynamoDbDeliveryLog"/>), so a crash
/// between the two repeats the outcome, with its events, rather than losing them: events come at least once, and a
/// receiver tells a repeat by its id.</para>
/// <para>Standard SNS and SQS do not keep order. The events of one message are far apart (an attempt lies between
/// them) and are sent in their order when taken together, but a receiver on AWS that needs the order of a message's
/// events should sort them by <c>at</c> (one machine keeps the order strictly).</para>
/// <para>An event being sent is hidden for the dispatcher's lease (the visibility timeout); a retry hides it until it is
/// due (at most SQS's 12 hours; the dispatcher's longest pause is an hour); a dead event goes to the queue's dead-letter
/// queue (its redrive policy's target) with why, and SQS's retention expires it there.</para>
/// </remarks>
public sealed class AwsEventOutbox : IEventOutbox
{
    /// <summary>The event's type, for subscription filter policies (<c>{"type": ["bounced", "complained"]}</c>).</summary>
    public const string TypeAttribute = "type";
    private const string EventIdAttribute = "ion-event-id";
    private const string OrderAttribute = "ion-order";
    private const string ReasonAttribute = "ion-reason";
    private const string WebhookAttribute = "ion-webhook";
    private static readonly TimeSpan LongestHide = TimeSpan.FromHours(12);

    private readonly SnsTopic _sns;
    private readonly string _topicArn;
    private readonly IAmazonSQS _sqs;
    private readonly SqsCalls _calls;
    private readonly IReadOnlyDictionary<string, string> _queues;
    private readonly int _waitSeconds;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, string?> _deadLetterQueues = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (DateTimeOffset At, string Why)> _lastDeaths = new(StringComparer.Ordinal);

    /// <param name="queues">Each webhook's queue, by webhook name.</param>
    /// <param name="longPoll">How long a take waits for an event to arrive (SQS's long poll, at most 20 s).</param>
    public AwsEventOutbox(SnsTopic sns, string topicArn, IAmazonSQS sqs, IReadOnlyDictionary<string, string> queues, TimeProvider time,
        TimeSpan? longPoll = null)
    {
        ArgumentNullException.ThrowIfNull(sns);
        ArgumentException.ThrowIfNullOrWhiteSpace(topicArn);
        ArgumentNullException.ThrowIfNull(sqs);
        ArgumentNullException.ThrowIfNull(queues);
        _sns = sns;
        _topicArn = topicArn;
        _sqs = sqs;
        _calls = new SqsCalls(sqs);
        _queues = queues;
        _waitSeconds = (int)Math.Clamp((longPoll ?? TimeSpan.FromSeconds(10)).TotalSeconds, 0, 20);
        _time = time;
    }

    /// <summary>One copy of each event, whoever wants it: SNS makes the webhooks' copies.</summary>
    public bool FansOut => true;

    /// <summary>Publishes each event once (PublishBatch, ten at a time); an event SNS refused is asked for once more,
    /// then the store is unavailable, and the caller asks again (a repeat has the same id).</summary>
    public async Task AddAsync(IReadOnlyList<OutboxEvent> events, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(events);
        List<OutboxEvent> distinct = [.. events.DistinctBy(e => e.EventId, StringComparer.Ordinal)];
        for (var start = 0; start < distinct.Count; start += SnsTopic.MaxBatchEntries)
        {
            var slice = distinct.GetRange(start, Math.Min(SnsTopic.MaxBatchEntries, distinct.Count - start));
            List<TopicEntry> entries = [.. slice.Select((e, i) => new TopicEntry(SqsCalls.EntryId(i), e.Payload, new Dictionary<string, string>
            {
                [TypeAttribute] = e.Type,
                [EventIdAttribute] = e.EventId,
                [OrderAttribute] = e.MessageId,
            }))];
            for (var attempt = 1; entries.Count > 0; attempt++)
            {
                IReadOnlyDictionary<string, string> refused;
                try
                {
                    // Ten small events fit one request; an event larger than a batch's share would still go alone.
                    refused = entries.Sum(e => SnsTopic.MessageSize(e.Message, e.Attributes)) <= SnsTopic.MaxMessageBytes
                        ? await _sns.PublishBatchAsync(_topicArn, entries, cancellationToken)
                        : await PublishOneByOneAsync(entries, cancellationToken);
                }
                catch (SnsException error)
                {
                    throw new StoreUnavailableException($"the events topic refused events: {error.Message}", error);
                }
                if (refused.Count > 0 && attempt == 2)
                    throw new StoreUnavailableException($"SNS PublishBatch on the events topic {_topicArn} refused {refused.Count} event(s) twice: {refused.Values.First()}");
                entries = [.. entries.Where(e => refused.ContainsKey(e.EntryId))];
            }
        }
    }

    private async Task<IReadOnlyDictionary<string, string>> PublishOneByOneAsync(List<TopicEntry> entries, CancellationToken cancellationToken)
    {
        foreach (var entry in entries)
            await _sns.PublishAsync(_topicArn, entry.Message, entry.Attributes, cancellationToken);
        return new Dictionary<string, string>();
    }

    public async Task<IReadOnlyList<PendingEvent>> TakeAsync(string webhook, DateTimeOffset now, TimeSpan lease, int limit, CancellationToken cancellationToken)
    {
        var queueUrl = QueueOf(webhook);
        var received = await _calls.ReceiveAsync(queueUrl, Math.Clamp(limit, 1, SqsCalls.BatchEntries), _waitSeconds,
            Seconds(lease), cancellationToken);
        return [.. received.Select(m => Pending(webhook, m)).OrderBy(e => e.CreatedAt)];
    }

    private PendingEvent Pending(string webhook, Message message)
    {
        var system = message.Attributes ?? [];
        var attributes = message.MessageAttributes ?? [];
        var receives = system.TryGetValue(SqsCalls.ReceiveCount, out var count) && int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 1;
        var sentAt = system.TryGetValue(SqsCalls.SentTimestamp, out var sent) && long.TryParse(sent, NumberStyles.None, CultureInfo.InvariantCulture, out var ms)
            ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
            : _time.GetUtcNow();
        // Something else published to the topic has no attributes of ion's: it goes as it is, known by SQS's id.
        var eventId = attributes.GetValueOrDefault(EventIdAttribute)?.StringValue ?? message.MessageId;
        return new PendingEvent(Key(webhook, message.ReceiptHandle), eventId,
            attributes.GetValueOrDefault(OrderAttribute)?.StringValue ?? eventId, message.Body ?? "", receives - 1, sentAt)
        {
            Type = attributes.GetValueOrDefault(TypeAttribute)?.StringValue,
        };
    }

    public async Task DeliveredAsync(IReadOnlyList<PendingEvent> events, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(events);
        foreach (var group in events.GroupBy(e => Split(e.Key).Webhook, StringComparer.Ordinal))
            await _calls.DeleteAsync(QueueOf(group.Key), [.. group.Select(e => Split(e.Key).Handle)], cancellationToken);
    }

    public async Task RetryAsync(PendingEvent pending, DateTimeOffset dueAt, string why, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pending);
        var (webhook, handle) = Split(pending.Key);
        var wait = dueAt - _time.GetUtcNow();
        wait = wait < TimeSpan.Zero ? TimeSpan.Zero : wait > LongestHide ? LongestHide : wait;
        await _calls.ChangeVisibilityAsync(QueueOf(webhook), [handle], Seconds(wait), cancellationToken);
    }

    public async Task DeadAsync(PendingEvent pending, DateTimeOffset at, string why, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pending);
        var (webhook, handle) = Split(pending.Key);
        var queueUrl = QueueOf(webhook);
        // Without a dead-letter queue the event is only in ion's log (the dispatcher's error line names it).
        if (await DeadLetterQueueAsync(queueUrl, cancellationToken) is { } deadLetters)
        {
            var request = new SendMessageRequest
            {
                QueueUrl = deadLetters,
                MessageBody = pending.Payload,
                MessageAttributes = new Dictionary<string, MessageAttributeValue>
                {
                    [EventIdAttribute] = Text(pending.EventId),
                    [OrderAttribute] = Text(pending.MessageId),
                    [WebhookAttribute] = Text(webhook),
                    [ReasonAttribute] = Text(why.Length > 1000 ? why[..1000] : why),
                },
            };
            await SqsCalls.CallAsync("SendMessage", deadLetters, token => _sqs.SendMessageAsync(request, token), cancellationToken);
        }
        await _calls.DeleteAsync(queueUrl, [handle], cancellationToken);
        _lastDeaths[webhook] = (at, why);
    }

    /// <summary>What waits in the webhook's queue and its dead letters (SQS's approximate counts). The oldest waiting
    /// event's time is not known to SQS's API (only to CloudWatch); the latest death is this process's.</summary>
    public async Task<WebhookBacklog> BacklogAsync(string webhook, CancellationToken cancellationToken)
    {
        var queueUrl = QueueOf(webhook);
        string[] names = [SqsCalls.Visible, SqsCalls.NotVisible, SqsCalls.Delayed];
        var queue = await _calls.AttributesAsync(queueUrl, names, cancellationToken);
        var dead = await DeadLetterQueueAsync(queueUrl, cancellationToken) is { } deadLetters
            ? await _calls.AttributesAsync(deadLetters, names, cancellationToken)
            : [];
        var pending = names.Sum(n => SqsCalls.Count(queue, n));
        var died = _lastDeaths.TryGetValue(webhook, out var last) ? last : default;
        return new WebhookBacklog((int)pending, null, (int)names.Sum(n => SqsCalls.Count(dead, n)),
            died.Why is null ? null : died.At, died.Why);
    }

    /// <summary>SQS's retention expires dead events: nothing to do.</summary>
    public Task<int> PruneAsync(DateTimeOffset before, CancellationToken cancellationToken) => Task.FromResult(0);

    private string QueueOf(string webhook) => _queues.TryGetValue(webhook, out var url)
        ? url
        : throw new InvalidOperationException($"no Ion:Aws:WebhookQueueUrls:{webhook}");

    /// <summary>The queue's redrive policy's target, looked up once: null when it has none.</summary>
    private async Task<string?> DeadLetterQueueAsync(string queueUrl, CancellationToken cancellationToken)
    {
        if (_deadLetterQueues.TryGetValue(queueUrl, out var known))
            return known;
        var attributes = await _calls.AttributesAsync(queueUrl, ["RedrivePolicy"], cancellationToken);
        string? url = null;
        if (attributes.TryGetValue("RedrivePolicy", out var policy) && JsonNode.Parse(policy)?["deadLetterTargetArn"]?.GetValue<string>() is { } arn)
        {
            var parts = arn.Split(':');
            var request = new GetQueueUrlRequest { QueueName = parts[^1], QueueOwnerAWSAccountId = parts[4] };
            url = (await SqsCalls.CallAsync("GetQueueUrl", parts[^1], token => _sqs.GetQueueUrlAsync(request, token), cancellationToken)).QueueUrl;
        }
        _deadLetterQueues[queueUrl] = url;
        return url;
    }

    // The key names the webhook too: DeliveredAsync is given keys alone. A receipt handle has no '|'.
    private static string Key(string webhook, string handle) => webhook + "|" + handle;

    private static (string Webhook, string Handle) Split(string key)
    {
        var bar = key.LastIndexOf('|');
        return (key[..bar], key[(bar + 1)..]);
    }

    private static MessageAttributeValue Text(string value) => new() { DataType = "String", StringValue = value };

    private static int Seconds(TimeSpan span) => (int)Math.Ceiling(span.TotalSeconds);
}
