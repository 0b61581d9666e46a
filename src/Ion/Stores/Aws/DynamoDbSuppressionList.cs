using System.Globalization;
using Amazon.DynamoDBv2;
using Amazon.DynamoDBv2.Model;
using Ion.Queues;
using Ion.Suppression;

namespace Ion.Stores.Aws;

/// <summary>
/// The suppression list in a DynamoDB table of its own (<c>Ion:Aws:SuppressionTable</c>): one item per address, keyed
/// by the address in lower case, so the lookup before each send is one consistent BatchGetItem spread over the table's
/// partitions like any hashed key.
/// </summary>
/// <remarks>
/// <para>Why not items in the delivery log's table: the two live differently. The log is a record of recent messages,
/// every finished item expiring after <c>Ion:Delivery:LogRetention</c> (30 days), a table one may drop, recreate or
/// prune by scanning (<see cref="DynamoDbDeliveryLog.PruneAsync"/>, which would pay to read every suppression too); the
/// list is kept for years (a complaint for ever) and must survive all that. Its own table keys items by the address
/// itself (no prefix kept apart from client message ids, no suppression item a <c>GET /v1/messages/{id}</c> could
/// read), grants its own actions (DeleteItem, Scan) without widening the log's, and can be backed up on its own. An
/// on-demand table costs nothing while idle; the price is one more setting and one more Terraform resource.</para>
/// <para>The item: <c>address_key</c> (S, the hash key: the address lower-cased; canonical addresses have A-label
/// domains), <c>address</c> (as given), <c>domain</c> (lower case, to filter on), <c>reason</c> (bounce, complaint,
/// manual), <c>detail</c>, <c>at</c> and <c>expires_ms</c> (unix milliseconds, as in SQLite; no <c>expires_ms</c>: for
/// ever), <c>expires_at</c> (the same expiry in epoch seconds, rounded up: the table's TTL, which deletes an expired
/// bounce for free), <c>message_id</c>, and <c>list_pk</c> (always "all"), the hash key of the index
/// <c>by_address</c> (range key <c>address_key</c>, everything projected) that lists the addresses in order. TTL
/// deletes within a day or two of the time, not at it, so every read still filters on <c>expires_ms</c>.</para>
/// <para>Lookups are consistent reads (1 read unit per recipient, found or not, instead of half): an address added
/// or taken off through the API counts from the next message on, as in SQLite, for about $0.06 more per million
/// recipients. Listing reads the index, which is eventually consistent: an address added a moment ago may be listed
/// a moment late. Its one partition takes every add; adds come at the rate of refusals for good, far below a
/// partition's 1,000 writes a second.</para>
/// </remarks>
public sealed class DynamoDbSuppressionList : ISuppressionList
{
    private const string AddressIndex = "by_address";
    private const string ListPartition = "all";
    // BatchGetItem's most keys per call, and the most operands of an IN.
    private const int BatchSize = 100;
    // Enough to write a message's refused recipients without opening a connection each.
    private const int Parallelism = 16;
    // BatchGetItem may leave keys unprocessed (throttling) without an error; they are asked for again this many times.
    private const int MaxRounds = 10;

    private readonly IAmazonDynamoDB _client;
    private readonly string _table;

    public DynamoDbSuppressionList(IAmazonDynamoDB client, string tableName)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrWhiteSpace(tableName);
        _client = client;
        _table = tableName;
    }

    /// <summary>Creates the list's table (on-demand, with the <c>by_address</c> index) unless it exists, waits until it
    /// is active and turns on its TTL on <c>expires_at</c>. An existing table without the index is refused. Returns
    /// what it changed, one line each.</summary>
    public static Task<IReadOnlyList<string>> CreateTableAsync(IAmazonDynamoDB client, string tableName, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(tableName);
        var request = new CreateTableRequest
        {
            TableName = tableName,
            BillingMode = BillingMode.PAY_PER_REQUEST,
            AttributeDefinitions =
            [
                new AttributeDefinition("address_key", ScalarAttributeType.S),
                new AttributeDefinition("list_pk", ScalarAttributeType.S),
            ],
            KeySchema = [new KeySchemaElement("address_key", KeyType.HASH)],
            GlobalSecondaryIndexes =
            [
                new GlobalSecondaryIndex
                {
                    IndexName = AddressIndex,
                    KeySchema = [new KeySchemaElement("list_pk", KeyType.HASH), new KeySchemaElement("address_key", KeyType.RANGE)],
                    Projection = new Projection { ProjectionType = ProjectionType.ALL },
                },
            ],
        };
        // Without TTL (an emulator) expired bounces stay as items, ignored by every read, until added again or removed.
        return DynamoDbTables.EnsureAsync(client, request, "suppression list", $"'{AddressIndex}' (list_pk S, address_key S)",
            "expired bounces are kept (and ignored)", cancellationToken);
    }

    public async Task<IReadOnlyDictionary<string, SuppressedAddress>> FindAsync(IReadOnlyCollection<string> addresses, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        // DynamoDB refuses a batch naming a key twice.
        var keys = addresses.Select(Key).Distinct(StringComparer.Ordinal).ToList();
        var found = new Dictionary<string, SuppressedAddress>(StringComparer.Ordinal);
        var at = now.ToUnixTimeMilliseconds();
        foreach (var chunk in keys.Chunk(BatchSize))
        {
            var wanted = new KeysAndAttributes { Keys = [.. chunk.Select(ItemKey)], ConsistentRead = true };
            for (var round = 0; wanted is { Keys.Count: > 0 }; round++)
            {
                if (round == MaxRounds)
                    throw new StoreUnavailableException($"The suppression list could not look addresses up in the DynamoDB table '{_table}': "
                        + $"{wanted.Keys.Count} of them stayed unprocessed ({MaxRounds} tries)");
                if (round > 0)
                    await Task.Delay(TimeSpan.FromMilliseconds(50 << Math.Min(round, 5)), cancellationToken);
                var request = new BatchGetItemRequest { RequestItems = new() { [_table] = wanted } };
                var response = await CallAsync("look addresses up", () => _client.BatchGetItemAsync(request, cancellationToken), cancellationToken);
                foreach (var item in response.Responses?.GetValueOrDefault(_table) ?? [])
                {
                    var entry = Read(item);
                    if (Number(item, "expires_ms") is not { } expires || expires > at)
                        found[item["address_key"].S] = entry;
                }
                wanted = response.UnprocessedKeys?.GetValueOrDefault(_table);
            }
        }
        // Keyed by the address as asked for, whatever its case.
        return addresses.Where(a => found.ContainsKey(Key(a))).Distinct(StringComparer.OrdinalIgnoreCase)
            .ToDictionary(a => a, a => found[Key(a)], StringComparer.OrdinalIgnoreCase);
    }

    public Task AddAsync(IReadOnlyList<SuppressedAddress> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        // Entries for one address are written in their order, as SQLite applies them; different addresses at once.
        var byAddress = entries.GroupBy(e => Key(e.Address), StringComparer.Ordinal).ToList();
        return ForEachAsync(byAddress.Count, async (i, token) =>
        {
            foreach (var entry in byAddress[i])
                await AddAsync(entry, token);
        }, cancellationToken);
    }

    private async Task AddAsync(SuppressedAddress entry, CancellationToken cancellationToken)
    {
        var item = new Dictionary<string, AttributeValue>
        {
            ["address_key"] = S(Key(entry.Address)),
            ["address"] = S(entry.Address),
            ["domain"] = S(Domain(entry.Address)),
            ["reason"] = S(entry.Reason.Name()),
            ["at"] = N(entry.At.ToUnixTimeMilliseconds()),
            ["list_pk"] = S(ListPartition),
        };
        if (entry.ExpiresAt is { } expires)
        {
            var ms = expires.ToUnixTimeMilliseconds();
            item["expires_ms"] = N(ms);
            // Rounded up, so that the TTL never deletes an entry before it has expired.
            item[DynamoDbTables.ExpiresAt] = N((ms + 999) / 1000);
        }
        // An empty string is left out (older DynamoDB and emulators refuse one); it reads back as "".
        if (entry.Detail.Length > 0)
            item["detail"] = S(entry.Detail);
        if (entry.MessageId is { } messageId)
            item["message_id"] = S(messageId);
        var request = new PutItemRequest { TableName = _table, Item = item };
        // A complaint in force stays: only another complaint replaces it (one written unconditionally).
        if (entry.Reason != SuppressionReason.Complaint)
        {
            request.ConditionExpression = "attribute_not_exists(address_key) OR NOT #reason = :complaint OR expires_ms <= :at";
            request.ExpressionAttributeNames = new() { ["#reason"] = "reason" };
            request.ExpressionAttributeValues = new() { [":complaint"] = S(SuppressionReason.Complaint.Name()), [":at"] = item["at"] };
        }
        try
        {
            await CallAsync("add addresses", () => _client.PutItemAsync(request, cancellationToken), cancellationToken);
        }
        catch (ConditionalCheckFailedException)
        {
            // A complaint was there: it is kept.
        }
    }

    public async Task<bool> RemoveAsync(string address, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(address);
        var request = new DeleteItemRequest { TableName = _table, Key = ItemKey(Key(address)), ReturnValues = ReturnValue.ALL_OLD };
        var response = await CallAsync("remove an address", () => _client.DeleteItemAsync(request, cancellationToken), cancellationToken);
        return response.Attributes is { Count: > 0 };
    }

    /// <summary>Rare (a streak of refusals found to be about the relay), so a consistent scan of the table rather than
    /// an index by message id that every bounce would pay a write for: an index is eventually consistent and could
    /// miss the refusal added a moment ago, leaving a good address suppressed for the whole bounce retention. The scan
    /// reads the whole list (1 read unit per 4 KB), plus one write per address taken off.</summary>
    public async Task<int> RemoveAddedByAsync(IReadOnlyCollection<string> messageIds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messageIds);
        const string operation = "remove the addresses messages added";
        var removed = 0;
        foreach (var chunk in messageIds.Distinct(StringComparer.Ordinal).Chunk(BatchSize))
        {
            var values = new Dictionary<string, AttributeValue> { [":bounce"] = S(SuppressionReason.Bounce.Name()) };
            for (var i = 0; i < chunk.Length; i++)
                values[$":m{i}"] = S(chunk[i]);
            var filter = $"#reason = :bounce AND message_id IN ({string.Join(", ", chunk.Select((_, i) => $":m{i}"))})";
            Dictionary<string, AttributeValue>? start = null;
            do
            {
                var request = new ScanRequest
                {
                    TableName = _table,
                    ConsistentRead = true,
                    ProjectionExpression = "address_key, message_id",
                    FilterExpression = filter,
                    ExpressionAttributeNames = new() { ["#reason"] = "reason" },
                    ExpressionAttributeValues = values,
                    ExclusiveStartKey = start,
                };
                var page = await CallAsync(operation, () => _client.ScanAsync(request, cancellationToken), cancellationToken);
                var found = page.Items ?? [];
                await ForEachAsync(found.Count, async (i, token) =>
                {
                    // Still the bounce the scan read: a complaint written since stays.
                    var delete = new DeleteItemRequest
                    {
                        TableName = _table,
                        Key = ItemKey(found[i]["address_key"].S),
                        ConditionExpression = "#reason = :bounce AND message_id = :id",
                        ExpressionAttributeNames = new() { ["#reason"] = "reason" },
                        ExpressionAttributeValues = new() { [":bounce"] = S(SuppressionReason.Bounce.Name()), [":id"] = found[i]["message_id"] },
                    };
                    try
                    {
                        await CallAsync(operation, () => _client.DeleteItemAsync(delete, token), token);
                        Interlocked.Increment(ref removed);
                    }
                    catch (ConditionalCheckFailedException)
                    {
                    }
                }, cancellationToken);
                start = page.LastEvaluatedKey is { Count: > 0 } last ? last : null;
            }
            while (start is not null);
        }
        return removed;
    }

    public async Task<IReadOnlyList<SuppressedAddress>> ListAsync(SuppressionQuery query, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfNegative(query.Limit);
        var page = new List<SuppressedAddress>();
        if (query.Limit == 0)
            return page;
        var values = new Dictionary<string, AttributeValue> { [":all"] = S(ListPartition), [":now"] = N(now.ToUnixTimeMilliseconds()) };
        Dictionary<string, string>? names = null;
        var keyCondition = "list_pk = :all";
        if (query.After is { } after)
        {
            values[":after"] = S(Key(after));
            keyCondition += " AND address_key > :after";
        }
        var filter = "(attribute_not_exists(expires_ms) OR expires_ms > :now)";
        if (query.Domain is { } domain)
        {
            values[":domain"] = S(domain.ToLowerInvariant());
            names = new() { ["#domain"] = "domain" };
            filter += " AND #domain = :domain";
        }
        if (query.Reason is { } reason)
        {
            values[":reason"] = S(reason.Name());
            (names ??= [])["#reason"] = "reason";
            filter += " AND #reason = :reason";
        }

        Dictionary<string, AttributeValue>? start = null;
        do
        {
            var request = new QueryRequest
            {
                TableName = _table,
                IndexName = AddressIndex,
                KeyConditionExpression = keyCondition,
                FilterExpression = filter,
                ExpressionAttributeNames = names,
                ExpressionAttributeValues = values,
                ScanIndexForward = true,
                ExclusiveStartKey = start,
                // Read no more than are still wanted: most entries pass the filter (the TTL deletes expired ones), and
                // those that do not only mean another page.
                Limit = query.Limit - page.Count,
            };
            var response = await CallAsync("list addresses", () => _client.QueryAsync(request, cancellationToken), cancellationToken);
            page.AddRange((response.Items ?? []).Select(Read).Take(query.Limit - page.Count));
            start = response.LastEvaluatedKey is { Count: > 0 } last ? last : null;
        }
        while (start is not null && page.Count < query.Limit);
        return page;
    }

    private async Task<T> CallAsync<T>(string operation, Func<Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call();
        }
        catch (Exception error) when (error is not ConditionalCheckFailedException && DynamoDbTables.IsUnavailable(error, cancellationToken))
        {
            throw DynamoDbTables.Unavailable("suppression list", operation, _table, error);
        }
    }

    private static Task ForEachAsync(int count, Func<int, CancellationToken, ValueTask> body, CancellationToken cancellationToken) =>
        count switch
        {
            0 => Task.CompletedTask,
            1 => body(0, cancellationToken).AsTask(),
            _ => Parallel.ForEachAsync(Enumerable.Range(0, count),
                new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = cancellationToken }, body),
        };

    /// <summary>The item's key: lookups ignore case, as SQLite's NOCASE column does.</summary>
    private static string Key(string address) => address.ToLowerInvariant();

    private static Dictionary<string, AttributeValue> ItemKey(string key) => new() { ["address_key"] = S(key) };

    /// <summary>The part after the last '@' (a quoted local part may hold one too), lower case.</summary>
    private static string Domain(string address) => address[(address.LastIndexOf('@') + 1)..].ToLowerInvariant();

    private static SuppressedAddress Read(Dictionary<string, AttributeValue> item) => new(
        Address: item["address"].S,
        Reason: Enum.Parse<SuppressionReason>(item["reason"].S, ignoreCase: true),
        Detail: item.TryGetValue("detail", out var detail) ? detail.S : "",
        At: DateTimeOffset.FromUnixTimeMilliseconds(Number(item, "at") ?? 0),
        ExpiresAt: Number(item, "expires_ms") is { } expires ? DateTimeOffset.FromUnixTimeMilliseconds(expires) : null,
        MessageId: item.TryGetValue("message_id", out var id) ? id.S : null);

    private static long? Number(Dictionary<string, AttributeValue> item, string name) =>
        item.TryGetValue(name, out var value) && value.N is { } n ? long.Parse(n, CultureInfo.InvariantCulture) : null;

    private static AttributeValue S(string value) => new() { S = value };

    private static AttributeValue N(long value) => new() { N = value.ToString(CultureInfo.InvariantCulture) };
}
