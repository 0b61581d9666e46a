using System.CommandLine;
using System.Globalization;
using Amazon.DynamoDBv2.Model;

namespace IonBench;

/// <summary><c>ionbench dynamo-count</c>: how many messages ion's DynamoDB delivery log has in a state (sent by
/// default), read with a consistent Scan of the whole table, and when the last of them was written: the
/// <c>updated_at</c> ion stamps on each outcome it records (unix ms, taken just before the write). With
/// <c>--wait-for</c> it scans again every 100 ms until the count is reached or the time is up.</summary>
internal static class DynamoCountCommand
{
    public static Command Create()
    {
        var serviceUrl = AwsBench.ServiceUrl("the DynamoDB endpoint, e.g. http://127.0.0.1:4567");
        Option<string> table = new("--table") { Description = "the delivery log's table (Ion:Aws:TableName)", Required = true };
        var region = AwsBench.Region();
        Option<string> state = new("--state") { DefaultValueFactory = _ => "sent" };
        Option<int> waitFor = new("--wait-for") { Description = "scan again until at least this many are in the state", DefaultValueFactory = _ => 0 };
        Option<int> timeout = new("--timeout-seconds") { DefaultValueFactory = _ => 30 };
        Command command = new("dynamo-count", "Count the delivery log's items in a state with a consistent Scan; prints count, last_updated_ns, scans")
        {
            serviceUrl, table, region, state, waitFor, timeout,
        };
        command.SetAction((parse, cancellationToken) => Run.Async(async () =>
        {
            using var dynamo = AwsBench.DynamoDb(parse.GetValue(serviceUrl)!, parse.GetValue(region)!);
            var deadline = Clock.Now() + TimeSpan.FromSeconds(parse.GetValue(timeout));
            var scans = 0;
            while (true)
            {
                scans++;
                var (count, lastUpdatedMs) = await ScanAsync();
                if (count >= parse.GetValue(waitFor) || Clock.Now() > deadline)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"count={count} last_updated_ns={lastUpdatedMs * 1_000_000} scans={scans}"));
                    return;
                }
                await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
            }

            async Task<(long Count, long LastUpdatedMs)> ScanAsync()
            {
                long count = 0, last = 0;
                Dictionary<string, AttributeValue>? start = null;
                do
                {
                    var page = await dynamo.ScanAsync(new ScanRequest
                    {
                        TableName = parse.GetValue(table),
                        ConsistentRead = true,
                        FilterExpression = "#state = :state",
                        ProjectionExpression = "updated_at",
                        ExpressionAttributeNames = new() { ["#state"] = "state" },
                        ExpressionAttributeValues = new() { [":state"] = new AttributeValue { S = parse.GetValue(state) } },
                        ExclusiveStartKey = start,
                    }, cancellationToken);
                    foreach (var item in page.Items ?? [])
                    {
                        count++;
                        if (item.TryGetValue("updated_at", out var updated) && long.TryParse(updated.N, CultureInfo.InvariantCulture, out var ms))
                            last = Math.Max(last, ms);
                    }
                    start = page.LastEvaluatedKey is { Count: > 0 } next ? next : null;
                }
                while (start is not null);
                return (count, last);
            }
        }));
        return command;
    }
}
