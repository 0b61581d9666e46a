using System.Diagnostics.Metrics;
using Amazon.SQS.Model;
using Ion.Queues;
using Ion.Stores.Aws;
using Ion.Stores.Sqlite;
using Ion.Suppression;
using Ion.Tests.Fixtures;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using static Ion.Tests.Suppression.FeedbackSamples;

namespace Ion.Tests.Stores.Aws;

/// <summary>SES's notifications reach the list through a real SNS topic and SQS queue (fauxqs), the queue subscribed
/// without raw delivery as it is to SES's topic. The list is the SQLite one, so a failing list can be made; ion serve on
/// the AWS store with its DynamoDB list is AwsModeTests'.</summary>
public sealed class FeedbackQueueReaderTests(SnsTopicTests.Fauxqs fauxqs) : IClassFixture<SnsTopicTests.Fauxqs>, IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private static CancellationToken Token => TestContext.Current.CancellationToken;
    private readonly string _folder = Directory.CreateTempSubdirectory("ion-feedback-").FullName;
    private readonly List<IDisposable> _disposables = [];

    [Fact]
    public async Task AnSesBounce_PublishedToTheFeedbackTopic_SuppressesItsAddress_AndEveryMessageIsDeleted()
    {
        var (topicArn, queueUrl) = await FeedbackTopicAsync();
        var list = List();
        using var sns = fauxqs.Topic();
        // What the queue holds is SNS's envelope, not the notification itself.
        await sns.PublishAsync(topicArn, SesDelivery("alice@x.example"), new Dictionary<string, string>(), Token);
        var delivery = await fauxqs.ReceiveOneAsync(queueUrl);
        Assert.Equal("Notification", Parse(delivery.Body).GetProperty("Type").GetString());
        await fauxqs.Sqs.ChangeMessageVisibilityAsync(queueUrl, delivery.ReceiptHandle, 0, Token);

        using var reader = Reader(queueUrl, list);
        await reader.StartAsync(Token);
        await sns.PublishAsync(topicArn, SesBounce("Permanent", "General", "ion.0123456789abcdef0123456789abcdef@test.example",
            ("bob@y.example", "5.1.1", "smtp; 550 5.1.1 <bob@y.example>: Recipient address rejected: User unknown")), new Dictionary<string, string>(), Token);
        await sns.PublishAsync(topicArn, SesComplaint("abuse", null, "carol@y.example"), new Dictionary<string, string>(), Token);
        await sns.PublishAsync(topicArn, SesBounce("Transient", "MailboxFull", null, ("dave@y.example", "5.2.2", null)), new Dictionary<string, string>(), Token);
        // Not from SES, and never will be: logged and deleted, and it holds nothing up.
        await fauxqs.Sqs.SendMessageAsync(queueUrl, "{\"hello\":", Token);

        await IonServer.WaitUntilAsync(async () => (await FindAsync(list, "bob@y.example", "carol@y.example")).Count == 2, "bob and carol are suppressed", Wait);
        var found = await FindAsync(list, "bob@y.example", "carol@y.example", "dave@y.example");
        Assert.Equal(SuppressionReason.Bounce, found["bob@y.example"].Reason);
        Assert.Equal("ion.0123456789abcdef0123456789abcdef@test.example", found["bob@y.example"].MessageId);
        Assert.Equal(SuppressionReason.Complaint, found["carol@y.example"].Reason);
        Assert.False(found.ContainsKey("dave@y.example"));
        await IonServer.WaitUntilAsync(async () => await CountAsync(queueUrl) == 0, "the feedback queue is empty", Wait);

        // A stop waits for the long poll (1 s here) rather than cancelling it.
        var stopping = System.Diagnostics.Stopwatch.StartNew();
        await reader.StopAsync(Token);
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(5), $"stopped after {stopping.Elapsed}");
    }

    [Fact]
    public async Task AListThatCannotBeWritten_LeavesTheNotificationInTheQueue_AndTheNextReceiveTakesIt()
    {
        var (topicArn, queueUrl) = await FeedbackTopicAsync();
        var list = new FailingFirst(List());
        using var reader = Reader(queueUrl, list, visibility: TimeSpan.FromSeconds(1));
        await reader.StartAsync(Token);

        using var sns = fauxqs.Topic();
        await sns.PublishAsync(topicArn, SesBounce("Permanent", "NoEmail", null, ("bob@y.example", "5.0.0", null)), new Dictionary<string, string>(), Token);

        await IonServer.WaitUntilAsync(async () => (await FindAsync(list, "bob@y.example")).Count == 1, "bob is suppressed on the second try", Wait);
        Assert.Equal(2, list.Adds);
        await IonServer.WaitUntilAsync(async () => await CountAsync(queueUrl) == 0, "the feedback queue is empty", Wait);
        await reader.StopAsync(Token);
    }

    private async Task<(string TopicArn, string QueueUrl)> FeedbackTopicAsync()
    {
        var name = $"f{Guid.NewGuid():N}"[..12];
        using var sns = fauxqs.Topic();
        var topicArn = await sns.CreateTopicAsync(name, Token);
        var (queueUrl, queueArn) = await fauxqs.QueueAsync(name);
        // As SES's topic is subscribed: SNS's envelope around each notification.
        await sns.SubscribeQueueAsync(topicArn, queueArn, rawDelivery: false, Token);
        return (topicArn, queueUrl);
    }

    private SqliteSuppressionList List()
    {
        var database = new SqliteDatabase(Path.Combine(_folder, $"{Guid.NewGuid():N}.db"));
        _disposables.Add(database);
        return new SqliteSuppressionList(database);
    }

    private FeedbackQueueReader Reader(string queueUrl, ISuppressionList list, TimeSpan? visibility = null)
    {
        var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        _disposables.Add(services);
        var suppressions = new Suppressions(list, Options.Create(new SuppressionOptions()), TimeProvider.System);
        var feedback = new Feedback(suppressions,
            new Ion.Events.DeliveryEvents(null, Options.Create(new Ion.Events.EventsOptions()), Options.Create(new Ion.Delivery.DeliveryOptions()), TimeProvider.System),
            new IonMetrics(services.GetRequiredService<IMeterFactory>()), NullLogger<Feedback>.Instance);
        return new FeedbackQueueReader(fauxqs.Sqs, new FeedbackQueue(queueUrl, feedback), TimeProvider.System, NullLogger<FeedbackQueueReader>.Instance,
            TimeSpan.FromSeconds(1), visibility);
    }

    private static Task<IReadOnlyDictionary<string, SuppressedAddress>> FindAsync(ISuppressionList list, params string[] addresses) =>
        list.FindAsync(addresses, TimeProvider.System.GetUtcNow(), Token);

    private async Task<int> CountAsync(string queueUrl)
    {
        var attributes = await fauxqs.Sqs.GetQueueAttributesAsync(new GetQueueAttributesRequest
        {
            QueueUrl = queueUrl,
            AttributeNames = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        }, Token);
        return attributes.ApproximateNumberOfMessages + attributes.ApproximateNumberOfMessagesNotVisible;
    }

    /// <summary>A list whose first write fails as a store that does not answer does.</summary>
    private sealed class FailingFirst(ISuppressionList inner) : ISuppressionList
    {
        public int Adds { get; private set; }

        public Task AddAsync(IReadOnlyList<SuppressedAddress> entries, CancellationToken cancellationToken) =>
            ++Adds == 1 ? throw new StoreUnavailableException("the list does not answer") : inner.AddAsync(entries, cancellationToken);

        public Task<IReadOnlyDictionary<string, SuppressedAddress>> FindAsync(IReadOnlyCollection<string> addresses, DateTimeOffset now, CancellationToken cancellationToken) =>
            inner.FindAsync(addresses, now, cancellationToken);

        public Task<bool> RemoveAsync(string address, CancellationToken cancellationToken) => inner.RemoveAsync(address, cancellationToken);

        public Task<int> RemoveAddedByAsync(IReadOnlyCollection<string> messageIds, CancellationToken cancellationToken) =>
            inner.RemoveAddedByAsync(messageIds, cancellationToken);

        public Task<IReadOnlyList<SuppressedAddress>> ListAsync(SuppressionQuery query, DateTimeOffset now, CancellationToken cancellationToken) =>
            inner.ListAsync(query, now, cancellationToken);
    }

    public void Dispose()
    {
        foreach (var disposable in _disposables)
            disposable.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }
}
