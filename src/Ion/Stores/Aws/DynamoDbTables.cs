using System.Net.Sockets;
using Amazon.DynamoDBv2;
using Amazon.DynamoDBv2.Model;
using Amazon.Runtime;
using Ion.Queues;

namespace Ion.Stores.Aws;

/// <summary>What the AWS store's two tables (the delivery log, the suppression list) share: creating one with its
/// index unless it exists, turning on its TTL, and telling DynamoDB not answering from an answer.</summary>
internal static class DynamoDbTables
{
    /// <summary>The TTL attribute of both tables: epoch seconds, as DynamoDB's TTL wants them.</summary>
    public const string ExpiresAt = "expires_at";

    /// <summary>Creates the table of <paramref name="request"/> (with its one index) unless it exists, waits until it
    /// and its indexes are active, and turns on its TTL on <see cref="ExpiresAt"/>. An existing table without the index
    /// is refused: made elsewhere (Terraform, by hand), it would fail only when the index is queried, as if DynamoDB
    /// were down. Returns what it changed, one line each, and <paramref name="noTtl"/> when the endpoint has no TTL
    /// (dynalite).</summary>
    /// <param name="owner">Whose table it is, for errors: "delivery log", "suppression list".</param>
    /// <param name="index">The index and its keys, as an error names them: "'dead_letters' (dead_pk S, dead_sk S)".</param>
    public static async Task<IReadOnlyList<string>> EnsureAsync(IAmazonDynamoDB client, CreateTableRequest request, string owner, string index,
        string noTtl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrWhiteSpace(request.TableName);
        var tableName = request.TableName;
        var indexName = request.GlobalSecondaryIndexes.Single().IndexName;
        List<string> changes = [];
        try
        {
            await client.CreateTableAsync(request, cancellationToken);
            changes.Add($"created table {tableName}");
        }
        catch (ResourceInUseException)
        {
            // It exists already (or is being created): waiting for it below is all that is left to do.
        }
        catch (Exception error) when (IsUnavailable(error, cancellationToken))
        {
            throw Unavailable(owner, "create the table", tableName, error);
        }

        while (true)
        {
            TableDescription table;
            try
            {
                table = (await client.DescribeTableAsync(tableName, cancellationToken)).Table;
            }
            catch (Exception error) when (IsUnavailable(error, cancellationToken))
            {
                throw Unavailable(owner, "describe the table", tableName, error);
            }
            var indexes = table.GlobalSecondaryIndexes ?? [];
            if (!indexes.Any(i => i.IndexName == indexName))
                throw new InvalidOperationException($"The DynamoDB table '{tableName}' exists without the index {index} "
                    + $"that the {owner} needs: add it, or use another table");
            if (table.TableStatus == TableStatus.ACTIVE && indexes.All(i => i.IndexStatus == IndexStatus.ACTIVE))
                break;
            await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken);
        }
        if (await TurnOnTimeToLiveAsync(client, owner, tableName, noTtl, cancellationToken) is { } ttl)
            changes.Add(ttl);
        return changes;
    }

    /// <summary>Turns on the table's TTL on <see cref="ExpiresAt"/> unless it is on; says what it did, or null.</summary>
    private static async Task<string?> TurnOnTimeToLiveAsync(IAmazonDynamoDB client, string owner, string tableName, string noTtl,
        CancellationToken cancellationToken)
    {
        try
        {
            var ttl = (await client.DescribeTimeToLiveAsync(new DescribeTimeToLiveRequest { TableName = tableName }, cancellationToken))
                .TimeToLiveDescription;
            if (ttl?.AttributeName == ExpiresAt && ttl.TimeToLiveStatus is { } status
                && (status == TimeToLiveStatus.ENABLED || status == TimeToLiveStatus.ENABLING))
                return null;
            await client.UpdateTimeToLiveAsync(new UpdateTimeToLiveRequest
            {
                TableName = tableName,
                TimeToLiveSpecification = new TimeToLiveSpecification { AttributeName = ExpiresAt, Enabled = true },
            }, cancellationToken);
            return $"turned on TTL ({ExpiresAt}) for table {tableName}";
        }
        catch (AmazonDynamoDBException error) when (error.ErrorCode == "UnknownOperationException")
        {
            return $"table {tableName}: this DynamoDB endpoint has no TTL, so {noTtl}";
        }
        catch (Exception error) when (IsUnavailable(error, cancellationToken))
        {
            throw Unavailable(owner, "turn on the TTL of the table", tableName, error);
        }
    }

    /// <summary>Service errors (a missing table, throttling after the SDK's own retries, a server error), the client's
    /// (network, no endpoint) and a timeout, which surfaces as a cancellation nobody asked for.</summary>
    public static bool IsUnavailable(Exception error, CancellationToken cancellationToken) => error switch
    {
        OperationCanceledException when cancellationToken.IsCancellationRequested => false,
        AmazonServiceException or AmazonClientException or HttpRequestException or IOException or SocketException
            or TimeoutException or OperationCanceledException => true,
        _ => false,
    };

    public static StoreUnavailableException Unavailable(string owner, string operation, string table, Exception error) =>
        new($"The {owner} could not {operation} in the DynamoDB table '{table}': {error.Message}", error);
}
