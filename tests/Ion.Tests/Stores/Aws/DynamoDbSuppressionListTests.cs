using Amazon.DynamoDBv2.Model;
using Ion.Stores.Aws;
using Ion.Suppression;
using Ion.Tests.Suppression;

namespace Ion.Tests.Stores.Aws;

public sealed class DynamoDbSuppressionListTests(DynaliteFixture dynalite) : SuppressionListContract, IClassFixture<DynaliteFixture>
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 7, 12, 0, 0, TimeSpan.Zero);

    // A table per test, so each starts empty; dynalite creates one in milliseconds.
    protected override async Task<ISuppressionList> CreateListAsync() => new DynamoDbSuppressionList(dynalite.Client, await CreateTableAsync());

    private async Task<string> CreateTableAsync()
    {
        var table = "ion-suppressions-" + Guid.NewGuid().ToString("N");
        await DynamoDbSuppressionList.CreateTableAsync(dynalite.Client, table, Cancellation);
        return table;
    }

    [Fact]
    public async Task Find_OfMoreRecipientsThanOneBatchTakes_AndTheSameAddressInTwoCases_AnswersEach()
    {
        var list = await CreateListAsync();
        await list.AddAsync([new("r7@x.example", SuppressionReason.Bounce, "550 5.1.1", T0), new("r180@x.example", SuppressionReason.Manual, "", T0)], Cancellation);
        List<string> recipients = [.. Enumerable.Range(0, 250).Select(i => $"r{i}@x.example"), "R7@X.example"];

        var found = await list.FindAsync(recipients, T0, Cancellation);

        Assert.Equal(["r180@x.example", "r7@x.example"], found.Keys.Order(StringComparer.Ordinal));
        Assert.Same(found["r7@x.example"], found["R7@X.example"]);
        Assert.Equal("", found["r180@x.example"].Detail);
    }

    [Fact]
    public async Task AnEntry_CarriesItsExpiryForTheTableTtl_InSecondsRoundedUp_AndOneForEverNone()
    {
        var table = await CreateTableAsync();
        var list = new DynamoDbSuppressionList(dynalite.Client, table);
        await list.AddAsync([
            new("Bob@y.example", SuppressionReason.Bounce, "550 5.1.1", T0, T0.AddDays(90).AddMilliseconds(1)),
            new("carol@y.example", SuppressionReason.Complaint, "spam", T0),
        ], Cancellation);

        var bob = await ItemAsync(table, "bob@y.example");
        Assert.Equal("Bob@y.example", bob["address"].S);
        Assert.Equal((T0.AddDays(90).ToUnixTimeSeconds() + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), bob["expires_at"].N);
        Assert.False((await ItemAsync(table, "carol@y.example")).ContainsKey("expires_at"));
    }

    [Fact]
    public async Task CreateTable_Twice_IsFine_AndOfATableWithoutTheIndex_SaysSo()
    {
        var table = await CreateTableAsync();
        Assert.DoesNotContain(await DynamoDbSuppressionList.CreateTableAsync(dynalite.Client, table, Cancellation), c => c.StartsWith("created", StringComparison.Ordinal));

        var bare = "ion-suppressions-" + Guid.NewGuid().ToString("N");
        await dynalite.Client.CreateTableAsync(new CreateTableRequest
        {
            TableName = bare,
            BillingMode = Amazon.DynamoDBv2.BillingMode.PAY_PER_REQUEST,
            AttributeDefinitions = [new AttributeDefinition("address_key", Amazon.DynamoDBv2.ScalarAttributeType.S)],
            KeySchema = [new KeySchemaElement("address_key", Amazon.DynamoDBv2.KeyType.HASH)],
        }, Cancellation);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => DynamoDbSuppressionList.CreateTableAsync(dynalite.Client, bare, Cancellation));
        Assert.Contains(bare, error.Message, StringComparison.Ordinal);
        Assert.Contains("by_address", error.Message, StringComparison.Ordinal);
    }

    private async Task<Dictionary<string, AttributeValue>> ItemAsync(string table, string key)
    {
        var response = await dynalite.Client.GetItemAsync(new GetItemRequest
        {
            TableName = table,
            Key = new() { ["address_key"] = new AttributeValue { S = key } },
            ConsistentRead = true,
        }, Cancellation);
        Assert.NotNull(response.Item);
        return response.Item;
    }
}
