using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Amazon.DynamoDBv2;
using Amazon.DynamoDBv2.Model;
using Amazon.Runtime;
using Ion.Events;
using Ion.Log;
using Ion.Queues;

namespace Ion.Stores.Aws;

/// <summary>
/// The delivery log in a DynamoDB table: one item per message id, as the SQLite log keeps one row, and every write a
/// single-item conditional write (no transactions), so both logs pass one contract.
/// </summary>
/// <remarks>
/// <para>The item, keyed by <c>id</c> (S); times are unix milliseconds (N) as in SQLite: <c>state</c> (queued,
/// retrying, sent, dead, suppressed, scheduled, cancelled), <c>created_at</c> (first queued) and <c>created_s</c> (the same in seconds, the base of the
/// TTL), <c>updated_at</c>, <c>queued_at</c> (last queued: published or redriven), <c>attempts_used</c>,
/// <c>recipients</c> (JSON array of <see cref="RecipientStatus"/>), <c>attempts</c> (list of maps, appended with
/// <c>list_append</c>), <c>last_reason</c>, <c>failure_class</c>, <c>claim_holder</c>/<c>claim_until</c> (which queue
/// copy delivers it, until when; a publish through ion writes the claim of the copy it is about to enqueue),
/// <c>redrive_at</c> (set while a redrive moves it), <c>not_before</c> (a retry's
/// time; while scheduled, its send_at), and <c>expires_at</c>, the table's TTL attribute (epoch seconds: first queued + retention), present only
/// while the message is finished (sent, dead, suppressed or cancelled), so DynamoDB never expires a message still waiting.</para>
/// <para>While dead an item also carries <c>body</c> and the keys of the sparse index <c>dead_letters</c>:
/// <c>dead_pk</c> (always "dead") and <c>dead_sk</c> (dead time, zero-padded, then the id: oldest first, ties by id as
/// in SQLite), plus <c>dead_domains</c> (string set of its recipients' domains, lower case) to filter on. Only dead
/// items are in the index, so listing them reads dead letters and nothing else. One partition holds them all, which
/// is fine for dead-lettering rates (far below a partition's 1,000 writes a second).</para>
/// <para>Reads of the table are consistent. Queries of the index cannot be (DynamoDB's global secondary indexes are
/// eventually consistent), so a dead letter may show up in the list, or leave it, a moment late.</para>
/// </remarks>
public sealed class DynamoDbDeliveryLog : IDeliveryLog
{
    private const string DeadIndex = "dead_letters";
    private const string DeadPartition = "dead";
    // Enough to keep a batch of ids moving without opening a connection per id.
    private const int Parallelism = 16;
    // A conditional write that fails is followed by a read and a new write; each round means another writer changed
    // the item in between. Past this many rounds something is wrong, and the caller may ask again.
    private const int MaxRounds = 10;
    // A copy ion publishes is recorded as claimed by it in the publish's own write (RecordQueuedAsync), for this long: a
    // copy received within an hour of its publish (BatchDelivery claims for an hour) finds a claim with a whole lease
    // still to run, and takes it with a read instead of a write. The price: a second copy of an id whose first copy
    // never reached the queue (a crash or an SNS failure between this write and the topic, then the client publishing
    // again) waits until this claim runs out.
    private static readonly TimeSpan PublishedClaim = TimeSpan.FromHours(2);

    // Everything a dead letter is listed with, and the filters' attributes: the index keeps these, not the attempts.
    private static readonly List<string> DeadIndexAttributes =
        ["body", "last_reason", "failure_class", "attempts_used", "created_at", "updated_at", "recipients", "dead_domains"];


    private readonly IAmazonDynamoDB _client;
    private readonly string _table;
    private readonly TimeSpan _retention;
    private readonly TimeProvider _time;
    private readonly IEventOutbox? _events;
    private readonly S3Payloads? _payloads;

    /// <param name="events">Where the events of an outcome (<see cref="DeliveryEntry.Events"/>) go, before the outcome
    /// is written: a crash between the two repeats the outcome with its events rather than losing them.</param>
    /// <param name="payloads">Where the bodies of large dead letters are: their record keeps the pointer (DynamoDB takes
    /// 400 KB an item), and a listing reads what it points to.</param>
    public DynamoDbDeliveryLog(IAmazonDynamoDB client, string tableName, TimeSpan retention, TimeProvider time, IEventOutbox? events = null,
        S3Payloads? payloads = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrWhiteSpace(tableName);
        ArgumentOutOfRangeException.ThrowIfLessThan(retention, TimeSpan.Zero);
        ArgumentNullException.ThrowIfNull(time);
        _client = client;
        _table = tableName;
        _retention = retention;
        _time = time;
        _events = events;
        _payloads = payloads;
    }

    /// <summary>Creates the delivery log's table (on-demand capacity, with its dead-letter index) unless it exists,
    /// waits until it is active, and turns on its TTL on <c>expires_at</c>. An existing table without the index is
    /// refused. Returns what it changed, one line each, and a line when the endpoint has no TTL (dynalite).</summary>
    public static Task<IReadOnlyList<string>> CreateTableAsync(IAmazonDynamoDB client, string tableName, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(tableName);
        var request = new CreateTableRequest
        {
            TableName = tableName,
            BillingMode = BillingMode.PAY_PER_REQUEST,
            AttributeDefinitions =
            [
                new AttributeDefinition("id", ScalarAttributeType.S),
                new AttributeDefinition("dead_pk", ScalarAttributeType.S),
                new AttributeDefinition("dead_sk", ScalarAttributeType.S),
            ],
            KeySchema = [new KeySchemaElement("id", KeyType.HASH)],
            GlobalSecondaryIndexes =
            [
                new GlobalSecondaryIndex
                {
                    IndexName = DeadIndex,
                    KeySchema = [new KeySchemaElement("dead_pk", KeyType.HASH), new KeySchemaElement("dead_sk", KeyType.RANGE)],
                    Projection = new Projection { ProjectionType = ProjectionType.INCLUDE, NonKeyAttributes = [.. DeadIndexAttributes] },
                },
            ],
        };
        // Without TTL (an emulator) nothing expires, and the log keeps every finished message until pruned.
        return DynamoDbTables.EnsureAsync(client, request, "delivery log", $"'{DeadIndex}' (dead_pk S, dead_sk S)", "finished messages are kept",
            cancellationToken);
    }

    public Task<IReadOnlyDictionary<string, MessageState>> RecordQueuedAsync(IReadOnlyList<string> ids, DateTimeOffset at, CancellationToken cancellationToken) =>
        RecordNewAsync(ids, null, at, cancellationToken);

    /// <summary>A new id is recorded claimed by its copy, for <see cref="PublishedClaim"/>, in the same PutItem that
    /// records it queued: the copy's first claim is then a read (see <see cref="ClaimAsync(ClaimRequest, TimeSpan, CancellationToken)"/>),
    /// and a message published and sent at the first attempt costs two writes, this one and its outcome.</summary>
    public Task<IReadOnlyDictionary<string, MessageState>> RecordQueuedAsync(IReadOnlyList<string> ids, IReadOnlyList<string> copies, DateTimeOffset at,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(copies);
        if (copies.Count != ids?.Count)
            throw new ArgumentException("one copy name per id", nameof(copies));
        return RecordNewAsync(ids, copies, at, cancellationToken);
    }

    private async Task<IReadOnlyDictionary<string, MessageState>> RecordNewAsync(IReadOnlyList<string> ids, IReadOnlyList<string>? copies, DateTimeOffset at,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var states = new MessageState?[ids.Count];
        await ForEachAsync(ids.Count, async (i, token) => states[i] = await RecordQueuedAsync(ids[i], copies?[i], null, at.ToUnixTimeMilliseconds(), token),
            cancellationToken);
        return Known(ids, states);
    }

    /// <summary>Without a claim (see <see cref="IDeliveryLog.RecordScheduledAsync"/>): the copy's claim at its time is a
    /// write.</summary>
    public async Task<IReadOnlyDictionary<string, MessageState>> RecordScheduledAsync(IReadOnlyList<string> ids, IReadOnlyList<DateTimeOffset> sendAt,
        DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(sendAt);
        if (sendAt.Count != ids.Count)
            throw new ArgumentException("one time per id", nameof(sendAt));
        var states = new MessageState?[ids.Count];
        await ForEachAsync(ids.Count, async (i, token) =>
            states[i] = await RecordQueuedAsync(ids[i], null, sendAt[i].ToUnixTimeMilliseconds(), at.ToUnixTimeMilliseconds(), token), cancellationToken);
        return Known(ids, states);
    }

    private static Dictionary<string, MessageState> Known(IReadOnlyList<string> ids, MessageState?[] states)
    {
        var known = new Dictionary<string, MessageState>(StringComparer.Ordinal);
        for (var i = 0; i < ids.Count; i++)
        {
            if (states[i] is { } state)
                known[ids[i]] = state;
        }
        return known;
    }

    /// <summary>Null when the id was recorded now (queued, or scheduled until <paramref name="sendAt"/>), else the
    /// state the log already had.</summary>
    private async Task<MessageState?> RecordQueuedAsync(string id, string? copy, long? sendAt, long at, CancellationToken cancellationToken)
    {
        for (var round = 0; round < MaxRounds; round++)
        {
            // A known id keeps what it has: the worker may even have taken and finished it already.
            var item = NewItem(id, at);
            if (sendAt is { } time)
            {
                // Queued from its time on, as far as Ion:Delivery:MaxQueueTime is concerned (as in SQLite).
                item.Item["state"] = S("scheduled");
                item.Item["queued_at"] = N(time);
                item.Item["not_before"] = N(time);
            }
            if (copy is not null)
            {
                item.Item["claim_holder"] = S(copy);
                item.Item["claim_until"] = N(at + (long)PublishedClaim.TotalMilliseconds);
            }
            var (created, existing) = await PutIfAbsentAsync(item, "record queued messages", cancellationToken);
            if (created)
                return null;
            if (await ExistingAsync(id, existing, "record queued messages", cancellationToken) is { } known)
                return ReadState(known);
            // Pruned between the write and the read: record it again.
        }
        throw KeptChanging("record queued messages", id);
    }

    public Task BeginRedriveAsync(IReadOnlyList<string> ids, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        // Only a dead letter is marked (and an unknown id is not created): the condition says which.
        return ForEachAsync(ids.Count, async (i, token) => await TryUpdateAsync(ids[i], new ItemUpdate()
            .Set("redrive_at", N(at.ToUnixTimeMilliseconds()))
            .When("#state = :dead", (":dead", S("dead"))), "mark dead letters as redriven", token), cancellationToken);
    }

    public Task RecordRedrivenAsync(IReadOnlyList<string> ids, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return ForEachAsync(ids.Count, (i, token) => new ValueTask(RecordRedrivenAsync(ids[i], at.ToUnixTimeMilliseconds(), token)), cancellationToken);
    }

    private async Task RecordRedrivenAsync(string id, long at, CancellationToken cancellationToken)
    {
        const string operation = "record redriven messages";
        for (var round = 0; round < MaxRounds; round++)
        {
            // An id the log does not know (a dead letter that never reached it) starts a record; one a worker already
            // took up again (see ClaimAsync) keeps what it has; a dead one is queued again from what it holds now.
            var item = await GetItemAsync(id, operation, cancellationToken);
            if (item is null)
            {
                if ((await PutIfAbsentAsync(NewItem(id, at), operation, cancellationToken)).Created)
                    return;
                continue;
            }
            if (ReadState(item) != MessageState.Dead)
                return;
            if ((await TryUpdateAsync(id, Requeue(item, at), operation, cancellationToken)).Written)
                return;
        }
        throw KeptChanging(operation, id);
    }

    public async Task<IReadOnlyList<Claim>> ClaimAsync(IReadOnlyList<ClaimRequest> requests, TimeSpan lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(requests);
        var claims = new Claim[requests.Count];
        await ForEachAsync(requests.Count, async (i, token) => claims[i] = await ClaimAsync(requests[i], lease, token), cancellationToken);
        return claims;
    }

    private async Task<Claim> ClaimAsync(ClaimRequest request, TimeSpan lease, CancellationToken cancellationToken)
    {
        const string operation = "claim messages";
        // A copy ion named when it published it gets a consistent read first (a fifth of a write's price, and no
        // condition to evaluate). It settles the common case without a write: a copy whose claim its publish recorded
        // (RecordQueuedAsync) with a whole lease still to run holds the id as surely as a claim written now would. It
        // also answers the copies that cannot claim (the id sent, dead, or held by another copy). The rest (a claim
        // given back, run out or too short) is claimed by the conditional write below. Other copies (an application's
        // publish straight to the topic, a redriven copy) had no claim recorded at publish: the write comes first for
        // them, as before, and a read only when it is refused.
        if (request.Holder.StartsWith(OutgoingMessage.CopyPrefix, StringComparison.Ordinal)
            && await GetItemAsync(request.Id, operation, cancellationToken) is { } read && Settle(request, read, lease, Now()) is { } settled)
            return settled;
        for (var round = 0; round < MaxRounds; round++)
        {
            var now = Now();
            var until = now + (long)lease.TotalMilliseconds;
            // One write for the usual cases: it creates an id never seen (published straight onto the queue, queued
            // when the queue took it) and claims it if it waits and is free, expired, or this copy's own already.
            var enqueued = request.EnqueuedAt.ToUnixTimeMilliseconds();
            var due = now + (long)DeliveryHistory.Grace.TotalMilliseconds;
            var (claimed, item) = await TryUpdateAsync(request.Id, new ItemUpdate()
                .Set("claim_holder", S(request.Holder))
                .Set("claim_until", N(until))
                .SetTo("#state", "if_not_exists(#state, :queued)", (":queued", S("queued")))
                .SetTo("created_at", "if_not_exists(created_at, :enqueued)", (":enqueued", N(enqueued)))
                .SetTo("created_s", "if_not_exists(created_s, :enqueued_s)", (":enqueued_s", N(Seconds(enqueued))))
                .SetTo("updated_at", "if_not_exists(updated_at, :enqueued)")
                .SetTo("queued_at", "if_not_exists(queued_at, :enqueued)")
                .SetTo("attempts_used", "if_not_exists(attempts_used, :zero)", (":zero", N(0)))
                // Written without parentheses (AND binds before OR): dynalite's parser backtracks on nested ones and
                // took 2.7 ms to parse this condition with them, 0.15 ms without, which set the AWS benchmark's pace.
                .When("attribute_not_exists(id)"
                      + " OR #state IN (:queued, :retrying) AND attribute_not_exists(claim_holder)"
                      + " OR #state IN (:queued, :retrying) AND claim_holder = :claim_holder"
                      + " OR #state IN (:queued, :retrying) AND claim_until <= :now"
                      // A scheduled message from its time on, as a queued one.
                      + " OR #state = :scheduled AND not_before <= :due AND attribute_not_exists(claim_holder)"
                      + " OR #state = :scheduled AND not_before <= :due AND claim_holder = :claim_holder"
                      + " OR #state = :scheduled AND not_before <= :due AND claim_until <= :now",
                    (":retrying", S("retrying")), (":now", N(now)), (":scheduled", S("scheduled")), (":due", N(due))),
                operation, cancellationToken, returnItem: true);
            if (claimed)
                return new Claim(request.Id, ClaimStatus.Claimed, History(item!));

            item = await ExistingAsync(request.Id, item, operation, cancellationToken);
            if (item is null)
                continue; // pruned in between: it is new again
            var history = History(item);
            switch (ReadState(item))
            {
                case MessageState.Sent or MessageState.Suppressed:
                    return new Claim(request.Id, ClaimStatus.AlreadySent, history);
                case MessageState.Dead when item.ContainsKey("redrive_at"):
                    // A dead letter caught mid-redrive starts afresh, as RecordRedrivenAsync would, and is claimed in
                    // the same write; if anything changed it since the read, look again.
                    var requeued = Requeue(item, now)
                        .When("attribute_exists(redrive_at)")
                        .Set("claim_holder", S(request.Holder))
                        .Set("claim_until", N(until));
                    var (written, fresh) = await TryUpdateAsync(request.Id, requeued, operation, cancellationToken, returnItem: true);
                    if (written)
                        return new Claim(request.Id, ClaimStatus.Claimed, History(fresh!));
                    continue;
                case MessageState.Dead:
                    return new Claim(request.Id, ClaimStatus.Dead, history);
                case MessageState.Cancelled:
                    return new Claim(request.Id, ClaimStatus.Cancelled, history);
                case MessageState.Scheduled when history.NotBefore is { } sendAt && sendAt.ToUnixTimeMilliseconds() > due:
                    return new Claim(request.Id, ClaimStatus.Scheduled, history, sendAt);
                default:
                    if (Text(item, "claim_holder") is { } holder && holder != request.Holder && Number(item, "claim_until") is { } held && held > now)
                        return new Claim(request.Id, ClaimStatus.HeldByOther, history, FromUnix(held));
                    continue; // released or expired since the write was refused: try again
            }
        }
        throw KeptChanging(operation, request.Id);
    }

    /// <summary>What a read of the item says about a claim by <paramref name="request"/>, or null when only a write can
    /// tell.</summary>
    private static Claim? Settle(ClaimRequest request, Dictionary<string, AttributeValue> item, TimeSpan lease, long now)
    {
        var held = Number(item, "claim_until");
        switch (ReadState(item))
        {
            case MessageState.Sent or MessageState.Suppressed:
                return new Claim(request.Id, ClaimStatus.AlreadySent, History(item));
            case MessageState.Dead:
                // Caught mid-redrive it is queued again by the write; else this copy joins it in the dead letters.
                return item.ContainsKey("redrive_at") ? null : new Claim(request.Id, ClaimStatus.Dead, History(item));
            case MessageState.Cancelled:
                return new Claim(request.Id, ClaimStatus.Cancelled, History(item));
            case MessageState.Scheduled when Number(item, "not_before") is { } sendAt && sendAt > now + (long)DeliveryHistory.Grace.TotalMilliseconds:
                return new Claim(request.Id, ClaimStatus.Scheduled, History(item), FromUnix(sendAt));
            default:
                if (Text(item, "claim_holder") is not { } holder || held is not { } until)
                    return null;
                if (holder == request.Holder)
                    return until - now >= (long)lease.TotalMilliseconds ? new Claim(request.Id, ClaimStatus.Claimed, History(item)) : null;
                return until > now ? new Claim(request.Id, ClaimStatus.HeldByOther, History(item), FromUnix(until)) : null;
        }
    }

    /// <summary>One conditional write: scheduled and no claim running (from its time on, a claim is what a delivery
    /// starts with). A refusal is explained from the item.</summary>
    public async Task<CancelResult> CancelAsync(string id, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        const string operation = "cancel a scheduled message";
        var now = at.ToUnixTimeMilliseconds();
        var (written, item) = await TryUpdateAsync(id, new ItemUpdate()
            .Set("#state", S("cancelled"))
            .Set("updated_at", N(now))
            .Remove("not_before")
            // Finished now: it expires as a sent message does (see Record).
            .SetTo("expires_at", "created_s + :retention_s", (":retention_s", N((long)_retention.TotalSeconds)))
            .When("#state = :scheduled AND attribute_not_exists(claim_holder)"
                  + " OR #state = :scheduled AND claim_until <= :now", (":scheduled", S("scheduled")), (":now", N(now))),
            operation, cancellationToken);
        if (written)
            return new CancelResult(CancelOutcome.Cancelled, MessageState.Cancelled);
        item = await ExistingAsync(id, item, operation, cancellationToken);
        if (item is null)
            return new CancelResult(CancelOutcome.Unknown, null);
        var state = ReadState(item);
        return state switch
        {
            MessageState.Cancelled => new CancelResult(CancelOutcome.Cancelled, state),
            MessageState.Scheduled => new CancelResult(CancelOutcome.BeingSent, state),
            _ => new CancelResult(CancelOutcome.NotScheduled, state),
        };
    }

    public Task ReleaseAsync(IReadOnlyList<ClaimRequest> claims, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(claims);
        // Only the holder gives a claim back: another copy may have taken it over after the lease ran out.
        return ForEachAsync(claims.Count, async (i, token) => await TryUpdateAsync(claims[i].Id, new ItemUpdate()
            .Remove("claim_holder", "claim_until")
            .When("claim_holder = :holder", (":holder", S(claims[i].Holder))), "release claims", token), cancellationToken);
    }

    public Task RecordAsync(IReadOnlyList<DeliveryEntry> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        // A refused condition is a sent message meeting a late outcome of another copy: nothing to record.
        return ForEachAsync(entries.Count, async (i, token) =>
        {
            if (_events is not null && entries[i].Events is { Count: > 0 } events)
                await _events.AddAsync(events, token);
            await TryUpdateAsync(entries[i].Id, Record(entries[i], Now()), "record outcomes", token);
        }, cancellationToken);
    }

    /// <summary>One write per outcome: the state and everything that goes with it, the attempt appended to the item's
    /// list, the claim ended.</summary>
    private ItemUpdate Record(DeliveryEntry entry, long now)
    {
        var dead = entry.State == MessageState.Dead;
        var update = new ItemUpdate()
            .Set("#state", S(StoredNames.Of(entry.State)))
            .Set("updated_at", N(now))
            // An id the log never saw starts its record now, as in SQLite.
            .SetTo("created_at", "if_not_exists(created_at, :now)", (":now", N(now)))
            .SetTo("created_s", "if_not_exists(created_s, :now_s)", (":now_s", N(Seconds(now))))
            .SetTo("queued_at", "if_not_exists(queued_at, :now)")
            .Set("attempts_used", N(entry.AttemptsUsed))
            .Set("recipients", S(JsonSerializer.Serialize([.. entry.Recipients], DynamoDbJson.Default.ListRecipientStatus)))
            .SetOrRemove("last_reason", entry.State != MessageState.Sent && entry.Reason is { } reason ? S(reason) : null)
            .SetOrRemove("failure_class", entry.FailureClass is { } failureClass ? S(StoredNames.Of(failureClass)) : null)
            .SetOrRemove("body", dead && entry.Body is { } body ? S(body) : null)
            .SetOrRemove("not_before", entry.NotBefore is { } notBefore ? N(notBefore.ToUnixTimeMilliseconds()) : null)
            .Remove("claim_holder", "claim_until");
        if (entry.Attempt is { } attempt)
            update.SetTo("attempts", "list_append(if_not_exists(attempts, :no_attempts), :attempt)", (":no_attempts", new AttributeValue { L = [] }),
                (":attempt", new AttributeValue { L = [new AttributeValue { M = AttemptItem(attempt) }] }));
        if (dead)
        {
            update.Set("dead_pk", S(DeadPartition)).Set("dead_sk", S(DeadKey(now, entry.Id)));
            var domains = Domains(entry.Recipients);
            update.SetOrRemove("dead_domains", domains.Count > 0 ? new AttributeValue { SS = domains } : null);
        }
        else
        {
            update.Remove("dead_pk", "dead_sk", "dead_domains");
        }
        // Finished messages expire a retention after they were first queued (what PruneAsync does by hand); a message
        // that may still be delivered must not, so the attribute goes when it is not finished.
        if (entry.State is MessageState.Sent or MessageState.Dead or MessageState.Suppressed)
            update.SetTo("expires_at", "if_not_exists(created_s, :now_s) + :retention_s", (":retention_s", N((long)_retention.TotalSeconds)));
        else
            update.Remove("expires_at");
        // Nothing makes a sent message unsent: a late outcome of another copy must not.
        if (entry.State != MessageState.Sent)
            update.When("NOT #state = :sent", (":sent", S("sent"))); // a missing state compares unequal: true
        return update;
    }

    /// <summary>Back to the queue with fresh attempts: failed recipients wait again, those that got it stay sent. The
    /// new recipients are computed from the ones read, so the write holds only if the item is still dead with those
    /// recipients.</summary>
    private static ItemUpdate Requeue(Dictionary<string, AttributeValue> item, long at)
    {
        var update = new ItemUpdate()
            .Set("#state", S("queued"))
            .Set("queued_at", N(at))
            .Set("updated_at", N(at))
            .Set("attempts_used", N(0))
            .Remove("last_reason", "failure_class", "body", "redrive_at", "not_before", "dead_pk", "dead_sk", "dead_domains", "expires_at")
            .When("#state = :dead", (":dead", S("dead")));
        if (item.TryGetValue("recipients", out var read))
        {
            var recipients = Recipients(item).Select(r => r.State == RecipientState.Failed ? r with { State = RecipientState.Pending } : r);
            update.Set("recipients", S(JsonSerializer.Serialize([.. recipients], DynamoDbJson.Default.ListRecipientStatus)))
                .When("recipients = :read_recipients", (":read_recipients", read));
        }
        else
        {
            update.When("attribute_not_exists(recipients)");
        }
        return update;
    }

    public async Task<DeliveryRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        var item = await GetItemAsync(id, "read a message's record", cancellationToken);
        if (item is null)
            return null;
        var attempts = item.TryGetValue("attempts", out var list) && list.L is { } values ? values.Select(a => ReadAttempt(a.M)).ToList() : [];
        var state = ReadState(item);
        return new DeliveryRecord(
            id,
            state,
            FromUnix(Number(item, "created_at") ?? 0),
            FromUnix(Number(item, "updated_at") ?? 0),
            Text(item, "last_reason"),
            ReadClass(item),
            (int)(Number(item, "attempts_used") ?? 0),
            Recipients(item),
            attempts,
            state == MessageState.Scheduled && Number(item, "not_before") is { } sendAt ? FromUnix(sendAt) : null);
    }

    public async Task<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(DeadLetterQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfNegative(query.Limit);
        var dead = new List<DeadLetter>();
        // The time range is a range of the index's sort key: "<padded ms>#<id>" sorts by time, then id. A bound is
        // the padded time alone, which sorts before every key of that millisecond, so since is inclusive and before
        // exclusive; BETWEEN is inclusive, but no key equals a bare bound.
        var since = Math.Max(0, query.DeadSince?.ToUnixTimeMilliseconds() ?? 0);
        var before = query.DeadBefore?.ToUnixTimeMilliseconds();
        if (query.Limit == 0 || before <= since)
            return dead;
        var values = new Dictionary<string, AttributeValue>
        {
            [":dead"] = S(DeadPartition),
            [":since"] = S(DeadKey(since, "")),
        };
        var keyCondition = "dead_pk = :dead AND dead_sk >= :since";
        if (before is { } end)
        {
            values[":before"] = S(DeadKey(end, ""));
            keyCondition = "dead_pk = :dead AND dead_sk BETWEEN :since AND :before";
        }
        List<string> filters = [];
        if (query.FailureClass is { } failureClass)
        {
            values[":class"] = S(StoredNames.Of(failureClass));
            filters.Add("failure_class = :class");
        }
        if (query.RecipientDomain is { Length: > 0 } domain)
        {
            values[":domain"] = S(domain.ToLowerInvariant());
            filters.Add("contains(dead_domains, :domain)");
        }

        Dictionary<string, AttributeValue>? start = null;
        do
        {
            var request = new QueryRequest
            {
                TableName = _table,
                IndexName = DeadIndex,
                KeyConditionExpression = keyCondition,
                FilterExpression = filters.Count > 0 ? string.Join(" AND ", filters) : null,
                ExpressionAttributeValues = values,
                ScanIndexForward = true,
                ExclusiveStartKey = start,
                // Without a filter every item read is listed, so read no more than are wanted; with one, read whole
                // pages and keep paging until the limit is filled.
                Limit = filters.Count == 0 ? query.Limit - dead.Count : null,
            };
            var page = await CallAsync("list dead letters", () => _client.QueryAsync(request, cancellationToken), cancellationToken);
            foreach (var item in page.Items ?? [])
            {
                if (dead.Count == query.Limit)
                    break;
                dead.Add(new DeadLetter(
                    Id: item["id"].S,
                    Body: Text(item, "body") ?? "",
                    Reason: Text(item, "last_reason") ?? "",
                    FailureClass: ReadClass(item) ?? FailureClass.Permanent,
                    Attempts: (int)(Number(item, "attempts_used") ?? 0),
                    EnqueuedAt: FromUnix(Number(item, "created_at") ?? 0),
                    DeadAt: FromUnix(Number(item, "updated_at") ?? 0),
                    Recipients: Recipients(item)));
            }
            start = page.LastEvaluatedKey is { Count: > 0 } last ? last : null;
        }
        while (start is not null && dead.Count < query.Limit);
        if (_payloads is null || !dead.Exists(d => S3Payloads.TryRead(d.Body, out _, out _)))
            return dead;
        // A payload gone from S3 leaves the pointer, which says where it was.
        return [.. await Task.WhenAll(dead.Select(async d => S3Payloads.TryRead(d.Body, out var bucket, out var key)
            ? d with { Body = (await _payloads.GetAsync(d.Body, bucket, key, cancellationToken)).Body }
            : d))];
    }

    // The table is keyed by id only, and the one index holds dead letters: per-minute counts and the latest finished
    // messages could only come from a scan of every item of the retention period (paid per item read, on every look
    // at the dashboard), or from another index or counter item written with every outcome (a second write per
    // message, and a hot partition for counters). Neither is worth it for a view: the store says it keeps no such
    // history, and CloudWatch has SQS's own numbers per minute.
    public Task<IReadOnlyList<MinuteActivity>?> GetThroughputAsync(DateTimeOffset since, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<MinuteActivity>?>(null);

    public Task<IReadOnlyList<FinishedMessage>?> ListRecentAsync(int limit, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<FinishedMessage>?>(null);

    /// <summary>On AWS the table's TTL forgets finished messages by itself (free, within a day or two of
    /// <c>expires_at</c>); this is for where there is no TTL (dynalite, or a table without it enabled). It scans the
    /// whole table, paying for every item read whether finished or not (1 read unit per 4 KB, consistent), plus one
    /// write per item deleted: run it rarely on a large table, or leave the job to the TTL.</summary>
    public async Task<int> PruneAsync(DateTimeOffset before, CancellationToken cancellationToken)
    {
        const string operation = "prune finished messages";
        // The same condition filters the scan and guards each delete, so a message redriven in between is kept.
        const string finishedBefore = "created_at < :before AND #state IN (:sent, :dead, :suppressed, :cancelled)";
        var cutOff = N(before.ToUnixTimeMilliseconds());
        var removed = 0;
        Dictionary<string, AttributeValue>? start = null;
        do
        {
            var request = new ScanRequest
            {
                TableName = _table,
                ConsistentRead = true,
                ProjectionExpression = "id",
                FilterExpression = finishedBefore,
                ExpressionAttributeNames = new() { ["#state"] = "state" },
                ExpressionAttributeValues = new() { [":before"] = cutOff, [":sent"] = S("sent"), [":dead"] = S("dead"), [":suppressed"] = S("suppressed"), [":cancelled"] = S("cancelled") },
                ExclusiveStartKey = start,
            };
            var page = await CallAsync(operation, () => _client.ScanAsync(request, cancellationToken), cancellationToken);
            var ids = (page.Items ?? []).Select(item => item["id"].S).ToList();
            await ForEachAsync(ids.Count, async (i, token) =>
            {
                var delete = new DeleteItemRequest
                {
                    TableName = _table,
                    Key = Key(ids[i]),
                    ConditionExpression = finishedBefore,
                    ExpressionAttributeNames = new() { ["#state"] = "state" },
                    ExpressionAttributeValues = new() { [":before"] = cutOff, [":sent"] = S("sent"), [":dead"] = S("dead"), [":suppressed"] = S("suppressed"), [":cancelled"] = S("cancelled") },
                };
                try
                {
                    await CallAsync(operation, () => _client.DeleteItemAsync(delete, token), token);
                    Interlocked.Increment(ref removed);
                }
                catch (ConditionalCheckFailedException)
                {
                    // Queued again since the scan read it: it stays.
                }
            }, cancellationToken);
            start = page.LastEvaluatedKey is { Count: > 0 } last ? last : null;
        }
        while (start is not null);
        return removed;
    }

    private long Now() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>A new record, queued at <paramref name="at"/>, put only if the id has none.</summary>
    private static PutItemRequest NewItem(string id, long at) => new()
    {
        Item = new()
        {
            ["id"] = S(id),
            ["state"] = S("queued"),
            ["created_at"] = N(at),
            ["created_s"] = N(Seconds(at)),
            ["updated_at"] = N(at),
            ["queued_at"] = N(at),
            ["attempts_used"] = N(0),
        },
        ConditionExpression = "attribute_not_exists(id)",
    };

    private async Task<(bool Created, Dictionary<string, AttributeValue>? Existing)> PutIfAbsentAsync(PutItemRequest request, string operation,
        CancellationToken cancellationToken)
    {
        request.TableName = _table;
        // AWS returns the item that failed the condition, saving a read; dynalite ignores this (see ExistingAsync).
        request.ReturnValuesOnConditionCheckFailure = ReturnValuesOnConditionCheckFailure.ALL_OLD;
        try
        {
            await CallAsync(operation, () => _client.PutItemAsync(request, cancellationToken), cancellationToken);
            return (true, null);
        }
        catch (ConditionalCheckFailedException refused)
        {
            return (false, refused.Item);
        }
    }

    /// <summary>The update, if the item meets its condition: then the item as written, else the item as it was
    /// (when the service says; <see cref="ExistingAsync"/> reads it otherwise).</summary>
    private async Task<(bool Written, Dictionary<string, AttributeValue>? Item)> TryUpdateAsync(string id, ItemUpdate update, string operation,
        CancellationToken cancellationToken, bool returnItem = false)
    {
        var request = update.ToRequest(_table, Key(id), returnItem);
        try
        {
            var response = await CallAsync(operation, () => _client.UpdateItemAsync(request, cancellationToken), cancellationToken);
            return (true, response.Attributes);
        }
        catch (ConditionalCheckFailedException refused)
        {
            return (false, refused.Item);
        }
    }

    /// <summary>The item that failed a condition: as the failed write returned it (AWS), or read consistently
    /// (dynalite returns nothing). Null if it is gone.</summary>
    private async Task<Dictionary<string, AttributeValue>?> ExistingAsync(string id, Dictionary<string, AttributeValue>? returned, string operation,
        CancellationToken cancellationToken) =>
        returned is { Count: > 0 } ? returned : await GetItemAsync(id, operation, cancellationToken);

    private async Task<Dictionary<string, AttributeValue>?> GetItemAsync(string id, string operation, CancellationToken cancellationToken)
    {
        var request = new GetItemRequest { TableName = _table, Key = Key(id), ConsistentRead = true };
        var response = await CallAsync(operation, () => _client.GetItemAsync(request, cancellationToken), cancellationToken);
        return response.Item is { Count: > 0 } item ? item : null;
    }

    /// <summary>Runs one call to DynamoDB, turning the ways it can fail into <see cref="StoreUnavailableException"/>.
    /// A refused condition is an answer, left to the caller; a cancellation asked for passes through.</summary>
    private async Task<T> CallAsync<T>(string operation, Func<Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call();
        }
        catch (Exception error) when (error is not ConditionalCheckFailedException && IsUnavailable(error, cancellationToken))
        {
            throw Unavailable(operation, _table, error);
        }
    }

    private static bool IsUnavailable(Exception error, CancellationToken cancellationToken) => DynamoDbTables.IsUnavailable(error, cancellationToken);

    private static StoreUnavailableException Unavailable(string operation, string table, Exception error) =>
        DynamoDbTables.Unavailable("delivery log", operation, table, error);

    private StoreUnavailableException KeptChanging(string operation, string id) =>
        new($"The delivery log could not {operation} in the DynamoDB table '{_table}': the item of '{id}' kept changing under it ({MaxRounds} tries)");

    private static Task ForEachAsync(int count, Func<int, CancellationToken, ValueTask> body, CancellationToken cancellationToken) =>
        count switch
        {
            0 => Task.CompletedTask,
            1 => body(0, cancellationToken).AsTask(),
            _ => Parallel.ForEachAsync(Enumerable.Range(0, count),
                new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = cancellationToken }, body),
        };

    private static Dictionary<string, AttributeValue> Key(string id) => new() { ["id"] = S(id) };

    private static AttributeValue S(string value) => new() { S = value };

    private static AttributeValue N(long value) => new() { N = value.ToString(CultureInfo.InvariantCulture) };

    private static long Seconds(long ms) => ms / 1000;

    private static string? Text(Dictionary<string, AttributeValue> item, string name) =>
        item.TryGetValue(name, out var value) ? value.S : null;

    private static long? Number(Dictionary<string, AttributeValue> item, string name) =>
        item.TryGetValue(name, out var value) && value.N is { } n ? long.Parse(n, CultureInfo.InvariantCulture) : null;

    private static DateTimeOffset FromUnix(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    /// <summary>The index's sort key: the dead time padded to 15 digits (enough for DateTimeOffset.MaxValue), so
    /// keys sort by time as strings, then by id.</summary>
    private static string DeadKey(long ms, string id) => ms.ToString("D15", CultureInfo.InvariantCulture) + (id.Length > 0 ? "#" + id : "");

    /// <summary>The recipients' domains, lower case, for the case-insensitive domain filter: the part after the last
    /// '@', since a quoted local part may hold one too.</summary>
    private static List<string> Domains(IReadOnlyList<RecipientStatus> recipients) =>
    [
        .. recipients
            .Select(r => r.Address.LastIndexOf('@') is var at and >= 0 ? r.Address[(at + 1)..].ToLowerInvariant() : "")
            .Where(d => d.Length > 0)
            .Distinct(StringComparer.Ordinal),
    ];

    private static DeliveryHistory History(Dictionary<string, AttributeValue> item) => new(
        AttemptsUsed: (int)(Number(item, "attempts_used") ?? 0),
        QueuedAt: FromUnix(Number(item, "queued_at") ?? 0),
        Recipients: Recipients(item),
        LastReason: Text(item, "last_reason"),
        FailureClass: ReadClass(item),
        NotBefore: Number(item, "not_before") is { } notBefore ? FromUnix(notBefore) : null);

    private static List<RecipientStatus> Recipients(Dictionary<string, AttributeValue> item) =>
        Text(item, "recipients") is { } json ? JsonSerializer.Deserialize(json, DynamoDbJson.Default.ListRecipientStatus) ?? [] : [];

    /// <summary>An attempt as the item keeps it: times in unix milliseconds, per-recipient answers as JSON.</summary>
    private static Dictionary<string, AttributeValue> AttemptItem(DeliveryAttempt attempt)
    {
        var item = new Dictionary<string, AttributeValue>
        {
            ["at"] = N(attempt.At.ToUnixTimeMilliseconds()),
            ["outcome"] = S(attempt.Outcome),
            ["reply"] = S(attempt.Reply),
            ["duration_ms"] = N((long)attempt.Duration.TotalMilliseconds),
        };
        if (attempt.SmtpCode is { } code)
            item["smtp_code"] = N(code);
        if (attempt.Recipients is { } recipients)
            item["recipients"] = S(JsonSerializer.Serialize([.. recipients], DynamoDbJson.Default.ListRecipientStatus));
        if (attempt.Relay is { } relay)
            item["relay"] = S(relay);
        return item;
    }

    private static DeliveryAttempt ReadAttempt(Dictionary<string, AttributeValue> item) => new(
        FromUnix(Number(item, "at") ?? 0),
        Text(item, "outcome") ?? "",
        Number(item, "smtp_code") is { } code ? (int)code : null,
        Text(item, "reply") ?? "",
        TimeSpan.FromMilliseconds(Number(item, "duration_ms") ?? 0),
        Text(item, "recipients") is { } json ? JsonSerializer.Deserialize(json, DynamoDbJson.Default.ListRecipientStatus) : null,
        Text(item, "relay"));

    private static MessageState ReadState(Dictionary<string, AttributeValue> item) => StoredNames.State(Text(item, "state"));

    private static FailureClass? ReadClass(Dictionary<string, AttributeValue> item) =>
        Text(item, "failure_class") is { } name ? StoredNames.FailureClass(name) : null;

    /// <summary>One UpdateItem's SET and REMOVE clauses, its condition (all parts must hold) and the values they
    /// name, so each write reads as the list of what it changes and when.</summary>
    private sealed class ItemUpdate
    {
        private readonly List<string> _set = [];
        private readonly List<string> _remove = [];
        private readonly List<string> _conditions = [];
        private readonly Dictionary<string, AttributeValue> _values = new(StringComparer.Ordinal);

        /// <summary>SET attribute = :attribute.</summary>
        public ItemUpdate Set(string attribute, AttributeValue value)
        {
            var name = ":" + attribute.TrimStart('#');
            return SetTo(attribute, name, (name, value));
        }

        /// <summary>SET attribute = expression, with the values the expression names.</summary>
        public ItemUpdate SetTo(string attribute, string expression, params (string Name, AttributeValue Value)[] values)
        {
            _set.Add($"{attribute} = {expression}");
            return With(values);
        }

        public ItemUpdate SetOrRemove(string attribute, AttributeValue? value) => value is null ? Remove(attribute) : Set(attribute, value);

        public ItemUpdate Remove(params string[] attributes)
        {
            _remove.AddRange(attributes);
            return this;
        }

        /// <summary>Conditions are joined by AND without parentheses (see the claim's condition for why), so one
        /// with an OR must be the only one.</summary>
        public ItemUpdate When(string condition, params (string Name, AttributeValue Value)[] values)
        {
            _conditions.Add(condition);
            if (_conditions.Count > 1 && _conditions.Any(c => c.Contains(" OR ", StringComparison.Ordinal)))
                throw new InvalidOperationException($"A condition with OR cannot be joined to others: {string.Join(" AND ", _conditions)}");
            return With(values);
        }

        private ItemUpdate With((string Name, AttributeValue Value)[] values)
        {
            foreach (var (name, value) in values)
                _values[name] = value;
            return this;
        }

        /// <summary>With <paramref name="returnItem"/>, the whole item comes back: as written, or as it failed the
        /// condition (AWS only).</summary>
        public UpdateItemRequest ToRequest(string table, Dictionary<string, AttributeValue> key, bool returnItem)
        {
            var update = (_set.Count > 0 ? "SET " + string.Join(", ", _set) : "") + (_remove.Count > 0 ? " REMOVE " + string.Join(", ", _remove) : "");
            var condition = _conditions.Count > 0 ? string.Join(" AND ", _conditions) : null;
            return new UpdateItemRequest
            {
                TableName = table,
                Key = key,
                UpdateExpression = update.Trim(),
                ConditionExpression = condition,
                // "state" is a reserved word in DynamoDB's expressions; DynamoDB refuses a name no expression uses.
                ExpressionAttributeNames = (update + condition).Contains("#state", StringComparison.Ordinal) ? new() { ["#state"] = "state" } : null,
                ExpressionAttributeValues = _values.Count > 0 ? _values : null,
                ReturnValues = returnItem ? ReturnValue.ALL_NEW : ReturnValue.NONE,
                ReturnValuesOnConditionCheckFailure = returnItem ? ReturnValuesOnConditionCheckFailure.ALL_OLD : ReturnValuesOnConditionCheckFailure.NONE,
            };
        }
    }
}

/// <summary>The recipients' JSON in the table, written by generated code (no reflection: the NativeAOT Lambda uses this
/// log too).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(List<RecipientStatus>))]
internal sealed partial class DynamoDbJson : JsonSerializerContext;
