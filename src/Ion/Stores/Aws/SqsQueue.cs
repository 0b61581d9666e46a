using System.Globalization;
using System.Text;
using System.Text.Json;
using Amazon.SQS;
using Amazon.SQS.Model;
using Ion.Events;
using Ion.Log;
using Ion.Messages;
using Ion.Queues;

namespace Ion.Stores.Aws;

/// <summary>The AWS <see cref="IMessageQueue"/>: an SQS queue and its dead-letter queue.</summary>
/// <remarks>
/// SQS cannot tell duplicates, so every enqueue is <see cref="EnqueueResult.Queued"/> and delivery's claim in the log
/// sends each id once. A message's id travels as its <c>ion-id</c> attribute; a message an application published
/// straight to the topic has none and is known by the <c>id</c> of its JSON body (the client's idempotency key), or
/// else by SQS's own MessageId. A copy ion enqueued carries the name ion gave it as its <c>ion-copy</c> attribute, and
/// is known by that name (its QueueMessageId) rather than SQS's MessageId. A dead letter carries its note as <c>ion-*</c> attributes, so the dead-letter queue
/// can be read without the delivery log.
/// <para>A long poll is never cancelled (see <see cref="SqsCalls"/>): a stopping worker hides nothing.</para>
/// </remarks>
public sealed class SqsQueue : IMessageQueue
{
    private const string IdAttribute = "ion-id";
    // The name ion gave a copy when it enqueued it (OutgoingMessage.Copy): the copy's QueueMessageId, which the
    // delivery log may have recorded as its claim already (OutgoingMessage.NewCopy(): the prefix and 32 hex digits).
    private const string CopyAttribute = "ion-copy";
    private const int CopyLength = 36;
    private const string DeadAtAttribute = "ion-dead-at";

    // SQS takes a send batch no larger than its largest message. That was 256 KiB before 2025 (1 MiB since), so
    // slices of 256 KiB fit SQS old and new alike.
    private const int BatchEntries = SqsCalls.BatchEntries;
    private const int BatchBytes = 256 * 1024;

    // SQS allows a message to be hidden at most 12 hours from its receive, so a longer retry delay is cut to this,
    // with ten minutes to spare for the attempt that came first. ion's delivery log remembers a retry's real time
    // (NotBefore) and hides a message that shows before it again for the rest, so a cut delay costs a receive, not
    // an early send. (A message held longer than ten minutes before a long return has the change refused, and shows
    // again after its visibility timeout, to be hidden again the same way.)
    private static readonly TimeSpan LongestReturn = TimeSpan.FromHours(11) + TimeSpan.FromMinutes(50);

    // SQS delays a message it is sent by at most 15 minutes. A scheduled message further ahead shows after that and is
    // hidden for the rest by delivery (the log's claim answers Scheduled), as a long retry is, at the cost of a receive.
    private static readonly TimeSpan LongestDelay = TimeSpan.FromMinutes(15);

    // Every receive counts towards the redrive policy's maxReceiveCount (ion provisions 50, and warns below 10), and a
    // message scheduled 30 days ahead is hidden again some 60 times, 11 h 50 min at a time. So a long return of a copy
    // received this often already goes back as a fresh copy (the same body, id and copy name, delayed what SQS allows)
    // and the old one is deleted: its count starts again. A return is a live worker's decision, never the crash loop
    // the redrive policy is there to end, which only a copy nobody returns can be.
    private const int FreshCopyAfter = 5;

    // The delivery log keeps the whole reason; the attribute is for a person reading the queue (SQS allows ten
    // attributes and one message's size for body and attributes together).
    private const int ReasonLength = 1000;

    // A redrive scans the dead-letter queue with a long poll, because only a long poll's empty answer means the
    // queue is empty (a short poll asks a sample of SQS's servers), and keeps the letters it leaves hidden long
    // enough that it does not meet them again while it runs.
    private const int RedriveWaitSeconds = 1;
    private const int RedriveVisibilitySeconds = 30;

    private readonly IAmazonSQS _sqs;
    private readonly SqsCalls _calls;
    private readonly string _queueUrl;
    private readonly string _deadLetterQueueUrl;
    private readonly int _visibilitySeconds;
    private readonly int _waitSeconds;
    private readonly TimeProvider _time;
    private readonly TopicRoute? _topic;
    private readonly IEventOutbox? _events;
    private readonly S3Payloads? _payloads;

    /// <param name="topic">The topic the queue is subscribed to with raw delivery: messages are enqueued by publishing
    /// there, as applications do, so every subscriber sees them. Null: straight to the queue. A redrive always goes
    /// straight to the queue, so that other subscribers do not get a message twice.</param>
    /// <param name="events">Where the <c>accepted</c> events of what is enqueued go, once it is queued.</param>
    /// <param name="payloads">Where a message too large for SNS is kept, a pointer to it enqueued in its place; null: such a
    /// message is refused (<see cref="SizeLimit"/>).</param>
    public SqsQueue(IAmazonSQS sqs, string queueUrl, string deadLetterQueueUrl, SqsQueueOptions options, TimeProvider time, TopicRoute? topic = null,
        IEventOutbox? events = null, S3Payloads? payloads = null)
    {
        ArgumentNullException.ThrowIfNull(sqs);
        ArgumentException.ThrowIfNullOrWhiteSpace(queueUrl);
        ArgumentException.ThrowIfNullOrWhiteSpace(deadLetterQueueUrl);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.VisibilityTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.VisibilityTimeout, TimeSpan.FromHours(12));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ReceiveWaitTime, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.ReceiveWaitTime, TimeSpan.FromSeconds(20));
        _sqs = sqs;
        _calls = new SqsCalls(sqs);
        _queueUrl = queueUrl;
        _deadLetterQueueUrl = deadLetterQueueUrl;
        _visibilitySeconds = Seconds(options.VisibilityTimeout);
        _waitSeconds = Seconds(options.ReceiveWaitTime);
        _time = time;
        _topic = topic;
        _events = events;
        _payloads = payloads;
        // With S3 for the large ones, only Ion:MaxMessageBytes bounds a message, as on one machine.
        SizeLimit = payloads is null ? SnsLimit : null;
    }

    public async Task<IReadOnlyList<EnqueueResult>> EnqueueAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        messages = await OffloadAsync(messages, cancellationToken);
        var refused = _topic is null
            ? await SendAsync(_queueUrl, messages, cancellationToken)
            : await PublishAsync(_topic, messages, cancellationToken);
        if (refused.Count > 0)
            throw Refused(_topic is null ? $"SQS SendMessageBatch on queue {_queueUrl}" : $"SNS PublishBatch on topic {_topic.TopicArn}", messages, refused);
        // After the messages, so that an event never tells of a message that is not queued. If this fails the caller
        // hears so and asks again; the messages are queued already, and a repeat is harmless (delivery's claim).
        if (_events is not null && messages.SelectMany(m => m.Events ?? []).ToList() is { Count: > 0 } accepted)
            await _events.AddAsync(accepted, cancellationToken);
        return [.. messages.Select(_ => EnqueueResult.Queued)];
    }

    public async Task<IReadOnlyList<QueuedMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxMessages);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxMessages, IMessageQueue.MaxReceive);
        var received = await _calls.ReceiveAsync(_queueUrl, maxMessages, _waitSeconds, _visibilitySeconds, cancellationToken);
        return await LoadAsync([.. received.Select(FromReceived)], cancellationToken);
    }

    /// <summary>Each message whose body is a pointer to S3 with the body it points to (<see cref="QueuedMessage.Offloaded"/>
    /// keeps the pointer); one whose payload is gone with the reason in <see cref="OffloadedBody.Error"/>. Read side by
    /// side; the rest as they are.</summary>
    /// <exception cref="StoreUnavailableException">S3 did not answer, or refused ion: the messages show again later.</exception>
    public async Task<IReadOnlyList<QueuedMessage>> LoadAsync(IReadOnlyList<QueuedMessage> messages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (!messages.Any(m => S3Payloads.TryRead(m.Body, out _, out _)))
            return messages;
        return await Task.WhenAll(messages.Select(async m =>
        {
            if (!S3Payloads.TryRead(m.Body, out var bucket, out var key))
                return m;
            if (_payloads is null)
            {
                return m with { Offloaded = new OffloadedBody(m.Body,
                    $"invalid: its payload is in S3 (s3://{bucket}/{key}) and Ion:Aws:PayloadBucket is not set, so ion does not read S3") };
            }
            var (body, offloaded) = await _payloads.GetAsync(m.Body, bucket, key, cancellationToken);
            // Known by SQS's MessageId (no ion-id: an application published it through an extended client): by the
            // id of its JSON body, as any other message the application published.
            var id = m.Id == m.QueueMessageId && offloaded.Error is null && BodyId(body) is { } bodyId ? bodyId : m.Id;
            return m with { Id = id, Body = body, Offloaded = offloaded };
        }));
    }

    /// <summary>The messages as they go on the topic or queue: one larger than SNS takes is put in S3, and its pointer
    /// goes in its place, marked with the extended clients' size attribute.</summary>
    private async Task<IReadOnlyList<OutgoingMessage>> OffloadAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken)
    {
        if (_payloads is null)
            return messages;
        // Each body's size counted once; the large ones put side by side.
        var large = messages.Select((m, i) => (Index: i, Bytes: Encoding.UTF8.GetByteCount(m.Body))).Where(m => m.Bytes > SnsLimit.MaxBodyBytes).ToList();
        if (large.Count == 0)
            return messages;
        var outgoing = messages.ToArray();
        await Task.WhenAll(large.Select(async m =>
            outgoing[m.Index] = outgoing[m.Index] with { Body = await _payloads.PutAsync(outgoing[m.Index].Body, cancellationToken), PayloadBytes = m.Bytes }));
        return outgoing;
    }

    public async Task<IReadOnlyList<bool>> KeepHiddenAsync(IReadOnlyList<QueuedMessage> messages, CancellationToken cancellationToken) =>
        await _calls.ChangeVisibilityAsync(_queueUrl, Handles(messages), _visibilitySeconds, cancellationToken);

    public async Task ReturnAsync(IReadOnlyList<QueuedMessage> messages, TimeSpan delay, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        List<QueuedMessage> fresh = delay > LongestDelay ? [.. messages.Where(m => m.ReceiveCount >= FreshCopyAfter)] : [];
        List<QueuedMessage> parked = [.. messages.Except(fresh)];
        if (fresh.Count > 0)
            parked.AddRange(await RenewAsync(fresh, delay, cancellationToken));
        // A stale receipt is ignored: the message is someone else's now, or gone.
        await _calls.ChangeVisibilityAsync(_queueUrl, Handles(parked), Seconds(delay < LongestReturn ? delay : LongestReturn), cancellationToken);
    }

    /// <summary>Sends each message again as a fresh copy (see <see cref="FreshCopyAfter"/>), straight to the queue, and
    /// deletes the old copy. Returns those SQS refused, still to be hidden the usual way. A crash between the send and
    /// the delete, or a receipt gone stale meanwhile (SQS may then keep the old copy), leaves two copies, which the
    /// delivery log's claim sends once.</summary>
    private async Task<IReadOnlyList<QueuedMessage>> RenewAsync(List<QueuedMessage> messages, TimeSpan delay, CancellationToken cancellationToken)
    {
        var notBefore = _time.GetUtcNow() + delay;
        // The same copy name, so the log sees one copy over its renewals (a claim it holds stays its own).
        List<OutgoingMessage> copies = [.. messages.Select(m => new OutgoingMessage(m.Id, m.StoredBody, Copy: m.QueueMessageId, NotBefore: notBefore))];
        var refused = (await SendAsync(_queueUrl, copies, cancellationToken)).Select(r => r.Index).ToHashSet();
        await _calls.DeleteAsync(_queueUrl, [.. messages.Where((_, i) => !refused.Contains(i)).Select(m => m.ReceiptHandle)], cancellationToken);
        return [.. messages.Where((_, i) => refused.Contains(i))];
    }

    // A stale receipt is ignored: SQS leaves the message, and whoever holds it now decides. A payload in S3 goes after
    // its message: the other way round a failed delete would leave a message without its payload.
    public async Task CompleteAsync(IReadOnlyList<QueuedMessage> messages, CancellationToken cancellationToken)
    {
        await _calls.DeleteAsync(_queueUrl, Handles(messages), cancellationToken);
        if (_payloads is not null && messages.Where(m => m.Offloaded is { Error: null }).Select(m => m.Offloaded!).ToList() is { Count: > 0 } done)
            await _payloads.DeleteAsync(done, cancellationToken);
    }

    public async Task DeadLetterAsync(QueuedMessage message, DeadLetterNote note, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(note);
        // The copy first, then the original: a crash between the two leaves the message in both queues, never in
        // neither, and the delivery log sends the copy that is still in the input queue back to the dead letters.
        await SendDeadLetterAsync(message, note, cancellationToken);
        await _calls.DeleteAsync(_queueUrl, [message.ReceiptHandle], cancellationToken);
    }

    /// <summary>Puts a copy of the message on the dead-letter queue with the note as <c>ion-*</c> attributes.</summary>
    private async Task SendDeadLetterAsync(QueuedMessage message, DeadLetterNote note, CancellationToken cancellationToken)
    {
        var attributes = new Dictionary<string, MessageAttributeValue>
        {
            [IdAttribute] = Text(message.Id),
            ["ion-reason"] = Text(Readable(note.Reason)),
            ["ion-failure-class"] = Text(StoredNames.Of(note.Class)),
            ["ion-attempts"] = Number(note.Attempts),
            ["ion-enqueued-at"] = Text(message.EnqueuedAt.ToString("O", CultureInfo.InvariantCulture)),
            [DeadAtAttribute] = Text(_time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture)),
        };
        if (note.SmtpCode is { } code)
            attributes["ion-smtp-code"] = Number(code);
        // A large message's letter keeps its pointer: the payload stays in S3 until the letter is redriven and sent.
        var request = new SendMessageRequest { QueueUrl = _deadLetterQueueUrl, MessageBody = message.StoredBody, MessageAttributes = attributes };
        await SqsCalls.CallAsync("SendMessage", _deadLetterQueueUrl, token => _sqs.SendMessageAsync(request, token), cancellationToken);
    }

    /// <summary>Scans the dead-letter queue: each letter wanted goes back to the input queue (a send, then a delete),
    /// the others stay hidden until the scan ends and are then released together. SQS's visibility gives each letter
    /// to one scan, so two redrives at once move it once.</summary>
    public async Task<IReadOnlyList<string>> RedriveAsync(IReadOnlyCollection<string>? ids, CancellationToken cancellationToken)
    {
        if (ids is { Count: 0 })
            return [];
        HashSet<string>? wanted = ids is null ? null : new(ids, StringComparer.Ordinal);
        HashSet<string> moved = new(StringComparer.Ordinal);
        HashSet<string> keptIds = new(StringComparer.Ordinal);
        List<string> kept = [];
        try
        {
            while (wanted is null || !wanted.IsSubsetOf(moved))
            {
                var round = await _calls.ReceiveAsync(_deadLetterQueueUrl, BatchEntries, RedriveWaitSeconds, RedriveVisibilitySeconds, cancellationToken);
                if (round.Count == 0)
                    break;

                List<(Message Letter, string Id)> take = [];
                // A letter this scan kept that shows again means the scan outlasted its hold: it has seen them all.
                var wrapped = false;
                foreach (var letter in round)
                {
                    var id = IdOf(letter);
                    if (wanted is null || wanted.Contains(id))
                    {
                        take.Add((letter, id));
                        continue;
                    }
                    wrapped |= !keptIds.Add(letter.MessageId);
                    kept.Add(letter.ReceiptHandle);
                }

                // A round received is finished whatever the caller says meanwhile (ten letters at most): cut short, the
                // letters it took would stay hidden for the hold, or be moved and left in the dead letters too. A stop
                // is seen at the next receive.
                List<OutgoingMessage> outgoing = [.. take.Select(t => new OutgoingMessage(t.Id, t.Letter.Body))];
                var refused = await SendAsync(_queueUrl, outgoing, CancellationToken.None);
                var refusedAt = refused.Select(r => r.Index).ToHashSet();
                var sent = take.Where((_, i) => !refusedAt.Contains(i)).ToList();
                await _calls.DeleteAsync(_deadLetterQueueUrl, [.. sent.Select(t => t.Letter.ReceiptHandle)], CancellationToken.None);
                moved.UnionWith(sent.Select(t => t.Id));
                if (refused.Count > 0)
                {
                    kept.AddRange(refusedAt.Select(i => take[i].Letter.ReceiptHandle));
                    throw Refused($"SQS SendMessageBatch on queue {_queueUrl}", outgoing, refused);
                }
                if (wrapped)
                    break;
            }
        }
        finally
        {
            // Not cancellable: letters left hidden would be missed by the next redrive for the rest of the hold.
            await _calls.ChangeVisibilityAsync(_deadLetterQueueUrl, kept, 0, CancellationToken.None);
        }
        return [.. moved];
    }

    /// <summary>
    /// Notes the dead letters ion did not put there: those SQS moved itself, by the input queue's redrive policy, after
    /// workers received them maxReceiveCount times without finishing them. They carry none of ion's <c>ion-*</c>
    /// attributes. Scans the dead-letter queue once as a redrive does; for each such letter <paramref name="decide"/>
    /// says what to note (and records it in the log), or null when the letter is not needed (delivered already, or
    /// another copy is being delivered): the letter is then replaced by a noted copy, or deleted. Letters ion noted
    /// are made visible again at once. Returns how many letters were noted and dropped.
    /// </summary>
    public async Task<(int Noted, int Dropped)> NoteUnnotedDeadLettersAsync(Func<QueuedMessage, Task<DeadLetterNote?>> decide, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(decide);
        var (noted, dropped) = (0, 0);
        HashSet<string> seen = new(StringComparer.Ordinal);
        List<string> kept = [];
        try
        {
            while (true)
            {
                var round = await _calls.ReceiveAsync(_deadLetterQueueUrl, BatchEntries, RedriveWaitSeconds, RedriveVisibilitySeconds, cancellationToken);
                if (round.Count == 0)
                    break;
                // A letter seen already means the scan outlasted its hold: it has seen them all.
                var wrapped = false;
                List<string> done = [];
                foreach (var letter in round)
                {
                    if (letter.MessageAttributes?.ContainsKey(DeadAtAttribute) == true)
                    {
                        wrapped |= !seen.Add(letter.MessageId);
                        kept.Add(letter.ReceiptHandle);
                        continue;
                    }
                    // A round received is finished whatever the caller says meanwhile, as a redrive's is: cut short, a
                    // letter noted and not yet deleted would be noted twice. A stop is seen at the next receive.
                    var message = FromReceived(letter);
                    if (await decide(message) is { } note)
                    {
                        await SendDeadLetterAsync(message, note, CancellationToken.None);
                        noted++;
                    }
                    else
                    {
                        dropped++;
                    }
                    done.Add(letter.ReceiptHandle);
                }
                await _calls.DeleteAsync(_deadLetterQueueUrl, done, CancellationToken.None);
                if (wrapped)
                    break;
            }
        }
        finally
        {
            // Not cancellable: letters left hidden would be missed by a redrive for the rest of the hold.
            await _calls.ChangeVisibilityAsync(_deadLetterQueueUrl, kept, 0, CancellationToken.None);
        }
        return (noted, dropped);
    }

    /// <summary>SNS's limit, 256 KB with the attributes, less room for the <c>ion-id</c> attribute at its longest (128
    /// characters, 3 UTF-8 bytes each at most) and the <c>ion-copy</c> attribute. The same whether ion publishes to the topic or straight to the queue,
    /// so a message is accepted or refused alike either way; and the queues' own limit (1 MiB unless set lower) leaves
    /// room for the note a dead letter carries. Null with S3 for the larger ones.</summary>
    public MessageSizeLimit? SizeLimit { get; }

    private static readonly MessageSizeLimit SnsLimit = new(
        SnsTopic.MaxMessageBytes - (IdAttribute.Length + "String".Length + (MessageParser.MaxIdLength * 3))
            - (CopyAttribute.Length + "String".Length + CopyLength),
        "SNS's limit of 256 KB, less room for ion's id attribute");

    public async Task<QueueCounts> CountAsync(CancellationToken cancellationToken)
    {
        var queue = _calls.AttributesAsync(_queueUrl, Counted, cancellationToken);
        var dead = _calls.AttributesAsync(_deadLetterQueueUrl, Counted, cancellationToken);
        await Task.WhenAll(queue, dead);
        var (q, d) = (await queue, await dead);
        return new QueueCounts(
            Ready: SqsCalls.Count(q, SqsCalls.Visible),
            Delayed: SqsCalls.Count(q, SqsCalls.NotVisible) + SqsCalls.Count(q, SqsCalls.Delayed),
            Dead: SqsCalls.Count(d, SqsCalls.Visible) + SqsCalls.Count(d, SqsCalls.NotVisible));
    }

    /// <summary>The message's id: its <c>ion-id</c> attribute, else the top-level <c>"id"</c> string of its JSON
    /// body, else SQS's MessageId.</summary>
    internal static string IdOf(Message message) =>
        message.MessageAttributes?.GetValueOrDefault(IdAttribute)?.StringValue is { Length: > 0 } id ? id
        : BodyId(message.Body ?? "") ?? message.MessageId;

    /// <summary>The top-level <c>"id"</c> string of a JSON object, read up to that property only; null when the body
    /// has none or is not JSON.</summary>
    internal static string? BodyId(string body)
    {
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(body));
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                return null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isId = reader.ValueTextEquals("id"u8);
                if (!reader.Read())
                    return null;
                if (isId)
                    return reader.TokenType == JsonTokenType.String && reader.GetString() is { Length: > 0 } id ? id : null;
                reader.Skip();
            }
            return null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>A message received from this queue, by ion or by someone else for it (Lambda's SQS event source
    /// hands its records to the function), as the core sees it.</summary>
    public QueuedMessage FromReceived(Message message)
    {
        ArgumentNullException.ThrowIfNull(message);
        // SQS always answers the system attributes asked for; the fallbacks only keep a message from being lost
        // to a service that did not.
        var attributes = message.Attributes ?? [];
        return new QueuedMessage(
            Id: IdOf(message),
            Body: message.Body,
            EnqueuedAt: attributes.TryGetValue(SqsCalls.SentTimestamp, out var sent) && long.TryParse(sent, NumberStyles.None, CultureInfo.InvariantCulture, out var ms)
                ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
                : _time.GetUtcNow(),
            ReceiveCount: attributes.TryGetValue(SqsCalls.ReceiveCount, out var count) && int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 1,
            QueueMessageId: message.MessageAttributes?.GetValueOrDefault(CopyAttribute)?.StringValue is { Length: > 0 } copy ? copy : message.MessageId,
            ReceiptHandle: message.ReceiptHandle);
    }

    /// <summary>Sends the messages straight to <paramref name="queueUrl"/>, each with its id as the <c>ion-id</c>
    /// attribute, in batches sent side by side; an entry SQS refuses is sent once more. Returns those refused twice, by
    /// index, with SQS's reason.</summary>
    private Task<IReadOnlyList<(int Index, string Reason)>> SendAsync(string queueUrl, IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken) =>
        SendInSlicesAsync(messages, async slice =>
        {
            var request = new SendMessageBatchRequest
            {
                QueueUrl = queueUrl,
                Entries = [.. slice.Select(i => new SendMessageBatchRequestEntry
                {
                    Id = EntryId(i),
                    MessageBody = messages[i].Body,
                    MessageAttributes = Attributes(messages[i]).ToDictionary(a => a.Key, a => Text(a.Value)),
                    DelaySeconds = Delay(messages[i]),
                })],
            };
            var response = await SqsCalls.CallAsync("SendMessageBatch", queueUrl, token => _sqs.SendMessageBatchAsync(request, token), cancellationToken);
            return [.. (response.Failed ?? []).Select(f => (int.Parse(f.Id, CultureInfo.InvariantCulture), $"{f.Code}: {f.Message}"))];
        });

    /// <summary>How long SQS is to keep the message from receives: a scheduled one until its time, or
    /// <see cref="LongestDelay"/>; null for the others (the queue's own delay).</summary>
    private int? Delay(OutgoingMessage message) =>
        message.NotBefore is { } notBefore && notBefore - _time.GetUtcNow() is var wait && wait > TimeSpan.Zero
            ? Seconds(wait < LongestDelay ? wait : LongestDelay)
            : null;

    /// <summary>Publishes the messages to the topic the queue is subscribed to (raw delivery), the same way: the
    /// <c>ion-id</c> attribute reaches the queue with each. SNS has no per-message delay, so a scheduled message reaches
    /// the queue at once, and its first receive hides it until its time (up to 12 hours at a time).</summary>
    private static Task<IReadOnlyList<(int Index, string Reason)>> PublishAsync(TopicRoute route, IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken) =>
        SendInSlicesAsync(messages, async slice =>
        {
            var entries = slice.Select(i => new TopicEntry(EntryId(i), messages[i].Body, Attributes(messages[i]))).ToList();
            IReadOnlyDictionary<string, string> refused;
            try
            {
                refused = await route.Topic.PublishBatchAsync(route.TopicArn, entries, cancellationToken);
            }
            catch (SnsException error)
            {
                // The topic gone, the credentials refused: the store cannot take the message, as when it does not answer.
                throw new StoreUnavailableException(error.Message, error);
            }
            return [.. refused.Select(r => (int.Parse(r.Key, CultureInfo.InvariantCulture), r.Value))];
        });

    /// <summary>The attributes ion enqueues a message with: its id, and the copy's name when it has one.</summary>
    private static Dictionary<string, string> Attributes(OutgoingMessage message)
    {
        var attributes = new Dictionary<string, string> { [IdAttribute] = message.Id };
        if (message.Copy is { } copy)
            attributes[CopyAttribute] = copy;
        if (message.PayloadBytes is { } bytes)
            attributes[S3Payloads.SizeAttribute] = bytes.ToString(CultureInfo.InvariantCulture);
        return attributes;
    }

    private static async Task<IReadOnlyList<(int Index, string Reason)>> SendInSlicesAsync(IReadOnlyList<OutgoingMessage> messages,
        Func<List<int>, Task<List<(int Index, string Reason)>>> sendOnce)
    {
        var refused = await Task.WhenAll(SendSlices(messages).Select(async slice =>
        {
            List<(int Index, string Reason)> refused = [];
            for (var attempt = 1; attempt <= 2 && slice.Count > 0; attempt++)
            {
                refused = await sendOnce(slice);
                slice = [.. refused.Select(r => r.Index)];
            }
            return refused;
        }));
        return [.. refused.SelectMany(r => r)];
    }

    /// <summary>Indexes of the messages in batches SQS takes: ten entries, and no more than <see cref="BatchBytes"/>
    /// of bodies and attributes (a larger message goes alone).</summary>
    private static IEnumerable<List<int>> SendSlices(IReadOnlyList<OutgoingMessage> messages)
    {
        List<int> slice = [];
        var bytes = 0;
        for (var i = 0; i < messages.Count; i++)
        {
            var size = Encoding.UTF8.GetByteCount(messages[i].Body)
                + Attributes(messages[i]).Sum(a => a.Key.Length + "String".Length + Encoding.UTF8.GetByteCount(a.Value));
            if (slice.Count == BatchEntries || (slice.Count > 0 && bytes + size > BatchBytes))
            {
                yield return slice;
                (slice, bytes) = ([], 0);
            }
            slice.Add(i);
            bytes += size;
        }
        if (slice.Count > 0)
            yield return slice;
    }

    private static StoreUnavailableException Refused(string call, IReadOnlyList<OutgoingMessage> messages, IReadOnlyList<(int Index, string Reason)> refused) =>
        new($"{call} refused {string.Join(", ", refused.Select(r => messages[r.Index].Id))} twice: {refused[0].Reason}");

    private static IReadOnlyList<string> Handles(IReadOnlyList<QueuedMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return [.. messages.Select(m => m.ReceiptHandle)];
    }

    private static string EntryId(int index) => SqsCalls.EntryId(index);

    private static readonly string[] Counted = [SqsCalls.Visible, SqsCalls.NotVisible, SqsCalls.Delayed];

    private static MessageAttributeValue Text(string value) => new() { DataType = "String", StringValue = value };

    private static MessageAttributeValue Number(int value) =>
        new() { DataType = "Number", StringValue = value.ToString(CultureInfo.InvariantCulture) };

    /// <summary>The reason as an attribute can hold it: not empty, only the characters SQS accepts, and short.</summary>
    private static string Readable(string reason)
    {
        var text = new StringBuilder(Math.Min(reason.Length, ReasonLength));
        foreach (var rune in reason.EnumerateRunes())
        {
            if (text.Length + rune.Utf16SequenceLength > ReasonLength)
                break;
            // SQS accepts #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
            var accepted = rune.Value is 0x9 or 0xA or 0xD or (>= 0x20 and <= 0xD7FF) or (>= 0xE000 and <= 0xFFFD) or >= 0x10000;
            if (accepted)
                text.Append(rune.ToString());
            else
                text.Append('?');
        }
        return text.Length > 0 ? text.ToString() : "(no reason given)";
    }

    // SQS counts in whole seconds; rounding up never shows a message before its time.
    private static int Seconds(TimeSpan span) => (int)Math.Ceiling(span.TotalSeconds);
}

/// <summary>Where <see cref="SqsQueue"/> publishes: the SNS topic its queue is subscribed to.</summary>
public sealed record TopicRoute(SnsTopic Topic, string TopicArn);
