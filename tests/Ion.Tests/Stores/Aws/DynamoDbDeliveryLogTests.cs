using System.Globalization;
using Amazon.DynamoDBv2;
using Amazon.DynamoDBv2.Model;
using Amazon.Runtime;
using Ion.Log;
using Ion.Queues;
using Ion.Stores.Aws;
using Ion.Tests.Fixtures;
using Ion.Tests.Log;

namespace Ion.Tests.Stores.Aws;

/// <summary>One dynalite for a test class, and an SDK client for it.</summary>
public sealed class DynaliteFixture : IAsyncLifetime
{
    private NodeTool? _dynalite;
    private AmazonDynamoDBClient? _client;

    public IAmazonDynamoDB Client => _client ?? throw new InvalidOperationException("dynalite has not started");

    public string Url => _dynalite?.Url ?? throw new InvalidOperationException("dynalite has not started");

    public async ValueTask InitializeAsync()
    {
        _dynalite = await NodeTool.StartDynaliteAsync();
        _client = new AmazonDynamoDBClient(new BasicAWSCredentials("test", "test"),
            new AmazonDynamoDBConfig { ServiceURL = _dynalite.Url, AuthenticationRegion = "us-east-1" });
    }

    public async ValueTask DisposeAsync()
    {
        _client?.Dispose();
        if (_dynalite is not null)
            await _dynalite.DisposeAsync();
    }
}

public sealed class DynamoDbDeliveryLogTests(DynaliteFixture dynalite) : DeliveryLogContract, IClassFixture<DynaliteFixture>
{
    private static readonly TimeSpan Retention = TimeSpan.FromDays(30);

    // A table per test, so each starts empty; dynalite creates one in milliseconds.
    protected override async Task<IDeliveryLog> CreateLogAsync() => await CreateLogAsync(await CreateTableAsync());

    // Per-minute counts and the latest finished messages would take a scan of the table (see GetThroughputAsync).
    protected override bool KeepsHistory => false;

    private Task<DynamoDbDeliveryLog> CreateLogAsync(string table) =>
        Task.FromResult(new DynamoDbDeliveryLog(dynalite.Client, table, Retention, TimeProvider.System));

    private async Task<string> CreateTableAsync()
    {
        var table = "ion-log-" + Guid.NewGuid().ToString("N");
        await DynamoDbDeliveryLog.CreateTableAsync(dynalite.Client, table, Cancellation);
        return table;
    }

    private async Task<Dictionary<string, AttributeValue>> ItemAsync(string table, string id)
    {
        var response = await dynalite.Client.GetItemAsync(new GetItemRequest
        {
            TableName = table,
            Key = new() { ["id"] = new AttributeValue { S = id } },
            ConsistentRead = true,
        }, Cancellation);
        Assert.NotNull(response.Item);
        return response.Item;
    }

    private static long? ExpiresAt(Dictionary<string, AttributeValue> item) =>
        item.TryGetValue("expires_at", out var value) ? long.Parse(value.N, CultureInfo.InvariantCulture) : null;

    [Fact]
    public async Task CreateTable_OfAnExistingTable_IsFine_AndKeepsItsItems()
    {
        var table = await CreateTableAsync();
        var log = await CreateLogAsync(table);
        await log.RecordQueuedAsync(["a"], Now, Cancellation);

        await DynamoDbDeliveryLog.CreateTableAsync(dynalite.Client, table, Cancellation);

        Assert.Equal(MessageState.Queued, (await log.GetAsync("a", Cancellation))!.State);
    }

    [Fact]
    public async Task CreateTable_OfAnExistingTableWithoutTheDeadLetterIndex_SaysSo()
    {
        var table = "ion-log-" + Guid.NewGuid().ToString("N");
        await dynalite.Client.CreateTableAsync(new CreateTableRequest
        {
            TableName = table,
            BillingMode = BillingMode.PAY_PER_REQUEST,
            AttributeDefinitions = [new AttributeDefinition("id", ScalarAttributeType.S)],
            KeySchema = [new KeySchemaElement("id", KeyType.HASH)],
        }, Cancellation);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => DynamoDbDeliveryLog.CreateTableAsync(dynalite.Client, table, Cancellation));

        Assert.Contains(table, error.Message, StringComparison.Ordinal);
        Assert.Contains("dead_letters", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFinishedMessage_ExpiresARetentionAfterItWasFirstQueued_AndAWaitingOneNever()
    {
        var table = await CreateTableAsync();
        var log = await CreateLogAsync(table);
        var firstQueued = Now.AddHours(-3);
        await log.RecordQueuedAsync(["sent", "dead", "waiting", "retrying"], firstQueued, Cancellation);

        await SendAsync(log, "sent", "q1");
        await DeadAsync(log, "dead", "{}", FailureClass.Permanent, "550", "x@example.com");
        await ClaimAsync(log, "retrying", "q2");
        await log.RecordAsync([new DeliveryEntry("retrying", "q2", MessageState.Retrying, new DeliveryAttempt(Now, "retry", 451, "451 later", TimeSpan.Zero),
            [new("x@example.com", RecipientState.Pending)], 1, "451 later")], Cancellation);

        var expected = (firstQueued + Retention).ToUnixTimeSeconds();
        Assert.Equal(expected, ExpiresAt(await ItemAsync(table, "sent")));
        Assert.Equal(expected, ExpiresAt(await ItemAsync(table, "dead")));
        Assert.Null(ExpiresAt(await ItemAsync(table, "waiting")));
        Assert.Null(ExpiresAt(await ItemAsync(table, "retrying")));
    }

    [Fact]
    public async Task ARedrivenDeadLetter_NoLongerExpires()
    {
        var table = await CreateTableAsync();
        var log = await CreateLogAsync(table);
        await DeadAsync(log, "by-redrive", "{}", FailureClass.Permanent, "550", "x@example.com");
        await DeadAsync(log, "by-claim", "{}", FailureClass.Permanent, "550", "x@example.com");
        Assert.NotNull(ExpiresAt(await ItemAsync(table, "by-redrive")));

        await log.BeginRedriveAsync(["by-redrive", "by-claim"], Now, Cancellation);
        await log.RecordRedrivenAsync(["by-redrive"], Now, Cancellation);
        Assert.Equal(ClaimStatus.Claimed, (await ClaimAsync(log, "by-claim", "moved-copy")).Status);

        Assert.Null(ExpiresAt(await ItemAsync(table, "by-redrive")));
        Assert.Null(ExpiresAt(await ItemAsync(table, "by-claim")));
    }

    [Fact]
    public async Task ATableThatDoesNotExist_IsStoreUnavailable_NamingIt()
    {
        const string table = "ion-log-nowhere";
        var log = await CreateLogAsync(table);

        var claim = await Assert.ThrowsAsync<StoreUnavailableException>(() => log.ClaimAsync([new ClaimRequest("a", "q1", Now)], Lease, Cancellation));
        var queued = await Assert.ThrowsAsync<StoreUnavailableException>(() => log.RecordQueuedAsync(["a", "b"], Now, Cancellation));
        var get = await Assert.ThrowsAsync<StoreUnavailableException>(() => log.GetAsync("a", Cancellation));
        var list = await Assert.ThrowsAsync<StoreUnavailableException>(() => log.ListDeadLettersAsync(new DeadLetterQuery(), Cancellation));
        var prune = await Assert.ThrowsAsync<StoreUnavailableException>(() => log.PruneAsync(Now, Cancellation));

        Assert.All(new[] { claim, queued, get, list, prune }, error => Assert.Contains(table, error.Message, StringComparison.Ordinal));
    }

    [Fact]
    public async Task AnEndpointNothingListensOn_IsStoreUnavailable_NamingTheTable()
    {
        using var client = new AmazonDynamoDBClient(new BasicAWSCredentials("test", "test"),
            new AmazonDynamoDBConfig { ServiceURL = $"http://127.0.0.1:{Ports.Free()}", AuthenticationRegion = "us-east-1", MaxErrorRetry = 0 });
        var log = new DynamoDbDeliveryLog(client, "ion-log-unreachable", Retention, TimeProvider.System);

        var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => log.RecordAsync([new DeliveryEntry("a", "q1", MessageState.Sent,
            null, [new("x@example.com", RecipientState.Sent)], 1)], Cancellation));

        Assert.Contains("ion-log-unreachable", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ACancelledCall_IsCancelled_NotUnavailable()
    {
        var log = await CreateLogAsync();
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => log.ClaimAsync([new ClaimRequest("a", "q1", Now)], Lease, cancelled.Token));
    }

    [Fact]
    public async Task TwoCopies_ClaimingOneId_AtTheSameMoment_OneWins()
    {
        var log = await CreateLogAsync();
        // Half the ids are known before the race, half are created by it: both paths must let one copy through.
        await log.RecordQueuedAsync([.. Enumerable.Range(0, 50).Where(i => i % 2 == 0).Select(i => $"m{i}")], Now, Cancellation);

        for (var i = 0; i < 50; i++)
        {
            var id = $"m{i}";
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var copies = new[] { "copy-1", "copy-2" }.Select(holder => Task.Run(async () =>
            {
                await start.Task;
                return Assert.Single(await log.ClaimAsync([new ClaimRequest(id, holder, Now)], Lease, Cancellation));
            }, Cancellation)).ToList();
            start.SetResult();
            var claims = await Task.WhenAll(copies);

            var winner = Assert.Single(claims, c => c.Status == ClaimStatus.Claimed);
            var loser = Assert.Single(claims, c => c != winner);
            Assert.Equal(ClaimStatus.HeldByOther, loser.Status);
        }
    }

    [Fact]
    public async Task DeadLetters_FilteredByDomain_IgnoreCase()
    {
        var log = await CreateLogAsync();
        await DeadAsync(log, "upper", "{}", FailureClass.Permanent, "550", "Bob@Two.EXAMPLE");
        await DeadAsync(log, "other", "{}", FailureClass.Permanent, "550", "bob@one.example");

        var dead = await log.ListDeadLettersAsync(new DeadLetterQuery(RecipientDomain: "two.Example"), Cancellation);

        Assert.Equal(["upper"], dead.Select(d => d.Id));
    }

    [Fact]
    public async Task DeadLetters_AreListedPastManyNonMatching_UpToTheLimit()
    {
        var log = await CreateLogAsync();
        for (var i = 0; i < 30; i++)
            await DeadAsync(log, $"d{i:D2}", "{}", i % 10 == 0 ? FailureClass.Transient : FailureClass.Permanent, "550", "x@example.com");

        Assert.Equal(["d00", "d10"], (await log.ListDeadLettersAsync(new DeadLetterQuery(Limit: 2, FailureClass: FailureClass.Transient), Cancellation)).Select(d => d.Id));
        Assert.Equal(25, (await log.ListDeadLettersAsync(new DeadLetterQuery(Limit: 25), Cancellation)).Count);
    }

    [Fact]
    public async Task ACopyNamedAtPublish_IsClaimedByThePublishsOwnWrite_SoItsClaimWritesNothing_AndAnotherCopyIsHeld()
    {
        var (first, second) = (OutgoingMessage.NewCopy(), OutgoingMessage.NewCopy());
        var table = await CreateTableAsync();
        var log = await CreateLogAsync(table);
        var publishedAt = Now;
        Assert.Empty(await log.RecordQueuedAsync(["a"], [first], publishedAt, Cancellation));
        var recorded = await ItemAsync(table, "a");

        var other = await ClaimAsync(log, "a", second);
        // A copy ion did not name (SQS's MessageId: an application's publish, a redrive) claims by the write, as before.
        var unnamed = await ClaimAsync(log, "a", Guid.NewGuid().ToString());
        var own = await ClaimAsync(log, "a", first);

        // The claim the publish wrote holds for two hours; a claim written now would hold for the lease (10 minutes).
        Assert.Equal(ClaimStatus.HeldByOther, other.Status);
        Assert.Equal(publishedAt.AddHours(2).ToUnixTimeMilliseconds(), other.HeldUntil!.Value.ToUnixTimeMilliseconds());
        Assert.Equal(ClaimStatus.HeldByOther, unnamed.Status);
        Assert.Equal(ClaimStatus.Claimed, own.Status);
        Assert.Equal(0, own.History.AttemptsUsed);
        Assert.Empty(own.History.Recipients);
        var claimed = await ItemAsync(table, "a");
        Assert.Equal(recorded["claim_until"].N, claimed["claim_until"].N);
        Assert.Equal(recorded["updated_at"].N, claimed["updated_at"].N);
        Assert.Equal(first, claimed["claim_holder"].S);
        Assert.Equal(MessageState.Queued, (await log.GetAsync("a", Cancellation))!.State);

        await SendAsync(log, "a", first);
        Assert.Equal(ClaimStatus.AlreadySent, (await ClaimAsync(log, "a", second)).Status);
    }

    [Fact]
    public async Task APublishAgain_OfAQueuedId_KeepsTheFirstCopysClaim()
    {
        var (first, second) = (OutgoingMessage.NewCopy(), OutgoingMessage.NewCopy());
        var log = await CreateLogAsync();
        await log.RecordQueuedAsync(["a"], [first], Now, Cancellation);

        var again = await log.RecordQueuedAsync(["a"], [second], Now, Cancellation);

        Assert.Equal(MessageState.Queued, again["a"]);
        Assert.Equal(ClaimStatus.HeldByOther, (await ClaimAsync(log, "a", second)).Status);
        Assert.Equal(ClaimStatus.Claimed, (await ClaimAsync(log, "a", first)).Status);
    }

    [Fact]
    public async Task ACopyNamedAtPublish_GivenBack_LetsAnotherCopyClaimIt()
    {
        var (first, second) = (OutgoingMessage.NewCopy(), OutgoingMessage.NewCopy());
        var log = await CreateLogAsync();
        await log.RecordQueuedAsync(["a"], [first], Now, Cancellation);
        Assert.Equal(ClaimStatus.Claimed, (await ClaimAsync(log, "a", first)).Status);

        // A release (the relay down, a shutdown) gives the publish's claim back like any other.
        await log.ReleaseAsync([new ClaimRequest("a", first, Now)], Cancellation);

        Assert.Equal(ClaimStatus.Claimed, (await ClaimAsync(log, "a", second)).Status);
        Assert.Equal(ClaimStatus.HeldByOther, (await ClaimAsync(log, "a", first)).Status);
    }

    [Fact]
    public async Task AClaimNamedAtPublish_WithLessThanALeaseToRun_IsTakenWithAWrite_ForAWholeLease()
    {
        var first = OutgoingMessage.NewCopy();
        var table = await CreateTableAsync();
        var log = await CreateLogAsync(table);
        // Published 1 h 55 min ago: 5 minutes of its claim are left, less than the 10-minute lease asked for.
        await log.RecordQueuedAsync(["a"], [first], Now.AddMinutes(-115), Cancellation);
        var recorded = await ItemAsync(table, "a");

        var before = Now;
        Assert.Equal(ClaimStatus.Claimed, (await ClaimAsync(log, "a", first)).Status);

        var until = long.Parse((await ItemAsync(table, "a"))["claim_until"].N, CultureInfo.InvariantCulture);
        Assert.NotEqual(recorded["claim_until"].N, until.ToString(CultureInfo.InvariantCulture));
        Assert.True(until >= before.Add(Lease).ToUnixTimeMilliseconds(), "the claim holds for a whole lease from now");
    }

    [Fact]
    public async Task RecordQueued_WithCopies_WantsOnePerId()
    {
        var log = await CreateLogAsync();

        await Assert.ThrowsAsync<ArgumentException>(() => log.RecordQueuedAsync(["a", "b"], [OutgoingMessage.NewCopy()], Now, Cancellation));
    }
}
