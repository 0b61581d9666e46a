using System.Text.Json.Nodes;
using Amazon.SQS.Model;
using Ion.Stores.Aws;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Stores.Aws;

/// <summary>The provisioner behind <c>ion aws provision</c>, against fauxqs.</summary>
public sealed class AwsProvisionerTests(SnsTopicTests.Fauxqs fauxqs) : IClassFixture<SnsTopicTests.Fauxqs>
{
    private static string Prefix() => $"t{Guid.NewGuid():N}"[..12];

    private AwsProvisioner Provisioner(SnsTopic sns, int maxReceiveCount = AwsProvisioner.DefaultMaxReceiveCount,
        Func<string, CancellationToken, Task>? createTable = null) =>
        new(fauxqs.Sqs, sns, createTable, maxReceiveCount);

    private async Task<Dictionary<string, string>> AttributesAsync(string queueUrl) =>
        (await fauxqs.Sqs.GetQueueAttributesAsync(new GetQueueAttributesRequest { QueueUrl = queueUrl, AttributeNames = ["All"] },
            TestContext.Current.CancellationToken)).Attributes;

    [Fact]
    public async Task Provision_FromNothing_CreatesBothQueues_TheTopic_AndARawSubscription()
    {
        var token = TestContext.Current.CancellationToken;
        using var sns = fauxqs.Topic();
        var prefix = Prefix();
        List<string> tables = [];

        var result = await Provisioner(sns, createTable: (name, _) => { tables.Add(name); return Task.CompletedTask; })
            .ProvisionAsync(prefix, token);

        var r = result.Resources;
        Assert.Equal(
        [
            $"created queue {prefix}-dead-letters",
            $"created topic {prefix}-mail",
            $"created queue {prefix}-mail",
            $"subscribed queue {prefix}-mail to topic {prefix}-mail with raw delivery",
        ], result.Changes);
        Assert.EndsWith($"/{prefix}-mail", r.QueueUrl, StringComparison.Ordinal);
        Assert.EndsWith($"/{prefix}-dead-letters", r.DeadLetterQueueUrl, StringComparison.Ordinal);
        Assert.Equal($"arn:aws:sns:us-east-1:000000000000:{prefix}-mail", r.TopicArn);
        Assert.Equal($"{prefix}-log", r.TableName);
        Assert.Equal([$"{prefix}-log"], tables);
        var queueArn = (await AttributesAsync(r.QueueUrl))["QueueArn"];
        var subscription = await sns.FindQueueSubscriptionAsync(r.TopicArn, queueArn, token);
        Assert.NotNull(subscription);
        Assert.Equal("true", (await sns.GetSubscriptionAttributesAsync(subscription, token))["RawMessageDelivery"]);
    }

    [Fact]
    public async Task Provision_Twice_ChangesNothing_AndGivesTheSameSettings()
    {
        var token = TestContext.Current.CancellationToken;
        using var sns = fauxqs.Topic();
        var prefix = Prefix();
        var first = await Provisioner(sns).ProvisionAsync(prefix, token);
        var attributes = await AttributesAsync(first.Resources.QueueUrl);

        var second = await Provisioner(sns).ProvisionAsync(prefix, token);

        Assert.Equal(first.Resources, second.Resources);
        Assert.Empty(second.Changes);
        var again = await AttributesAsync(first.Resources.QueueUrl);
        Assert.Equal(attributes["LastModifiedTimestamp"], again["LastModifiedTimestamp"]);
        Assert.Equal(attributes["Policy"], again["Policy"]);
        var queues = await fauxqs.Sqs.ListQueuesAsync(new ListQueuesRequest { QueueNamePrefix = prefix }, token);
        Assert.Equal(2, queues.QueueUrls.Count);
    }

    [Fact]
    public async Task Provision_SetsTheRedrivePolicy_ToTheDeadLetterQueue_WithTheConfiguredMaxReceiveCount()
    {
        var token = TestContext.Current.CancellationToken;
        using var sns = fauxqs.Topic();

        var r = (await Provisioner(sns, maxReceiveCount: 7).ProvisionAsync(Prefix(), token)).Resources;

        var attributes = await AttributesAsync(r.QueueUrl);
        var redrive = JsonNode.Parse(attributes["RedrivePolicy"])!;
        Assert.Equal((await AttributesAsync(r.DeadLetterQueueUrl))["QueueArn"], redrive["deadLetterTargetArn"]!.GetValue<string>());
        Assert.Equal("7", redrive["maxReceiveCount"]!.ToJsonString().Trim('"'));
        Assert.Equal("300", attributes["VisibilityTimeout"]);
        var statement = JsonNode.Parse(attributes["Policy"])!["Statement"]![0]!;
        Assert.Equal(r.TopicArn, statement["Condition"]!["ArnEquals"]!["aws:SourceArn"]!.GetValue<string>());
        Assert.Equal(attributes["QueueArn"], statement["Resource"]!.GetValue<string>());
    }

    [Fact]
    public async Task Publishing_ToTheProvisionedTopic_ReachesTheQueue_AsPublished()
    {
        var token = TestContext.Current.CancellationToken;
        using var sns = fauxqs.Topic();
        var r = (await Provisioner(sns).ProvisionAsync(Prefix(), token)).Resources;
        const string json = """{"action":"send","recipient":"a@example.com","subject":"Hi ✓ & <p>","body_text":"x"}""";

        await sns.PublishAsync(r.TopicArn, json, new Dictionary<string, string> { ["ion-id"] = "p-1" }, token);

        var message = await fauxqs.ReceiveOneAsync(r.QueueUrl);
        Assert.Equal(json, message.Body);
        Assert.Equal("p-1", message.MessageAttributes["ion-id"].StringValue);
    }

    [Fact]
    public async Task Provision_OverAQueueAndSubscriptionMadeByHand_SetsWhatIonNeeds_AndKeepsOtherPolicyStatements()
    {
        var token = TestContext.Current.CancellationToken;
        using var sns = fauxqs.Topic();
        var prefix = Prefix();
        var queue = await fauxqs.QueueAsync($"{prefix}-mail");
        const string other = """{"Sid":"someone-else","Effect":"Allow","Principal":"*","Action":"sqs:GetQueueUrl","Resource":"*"}""";
        await fauxqs.Sqs.SetQueueAttributesAsync(queue.Url,
            new Dictionary<string, string> { ["Policy"] = $$"""{"Version":"2012-10-17","Statement":[{{other}}]}""" }, token);
        var topicArn = await sns.CreateTopicAsync($"{prefix}-mail", token);
        await sns.SubscribeQueueAsync(topicArn, queue.Arn, rawDelivery: false, token);

        var result = await Provisioner(sns).ProvisionAsync(prefix, token);

        Assert.Equal(
        [
            $"created queue {prefix}-dead-letters",
            $"set VisibilityTimeout, MessageRetentionPeriod, RedrivePolicy, Policy on queue {prefix}-mail",
            $"turned on raw delivery for queue {prefix}-mail's subscription to topic {prefix}-mail",
        ], result.Changes);
        var statements = JsonNode.Parse((await AttributesAsync(queue.Url))["Policy"])!["Statement"]!.AsArray();
        Assert.Equal(["someone-else", "ion-topic-sends"], statements.Select(s => s!["Sid"]!.GetValue<string>()));
        await sns.PublishAsync(topicArn, "{}", new Dictionary<string, string>(), token);
        Assert.Equal("{}", (await fauxqs.ReceiveOneAsync(queue.Url)).Body);
        Assert.Empty((await Provisioner(sns).ProvisionAsync(prefix, token)).Changes);
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("a-prefix-so-long-that-the-dead-letter-queue-name-would-pass-80-chars")]
    public async Task Provision_WithAPrefixThatCannotNameAQueue_IsRefused(string prefix)
    {
        using var sns = fauxqs.Topic();

        var error = await Assert.ThrowsAsync<ArgumentException>(() => Provisioner(sns).ProvisionAsync(prefix, TestContext.Current.CancellationToken));

        Assert.Contains("prefix", error.Message, StringComparison.Ordinal);
    }
}
