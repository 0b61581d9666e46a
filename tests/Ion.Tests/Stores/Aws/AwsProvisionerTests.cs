using System.Diagnostics;
using System.Text.Json.Nodes;
using Amazon.SQS.Model;
using Ion.Stores.Aws;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Stores.Aws;

/// <summary><c>ion aws provision</c> and the provisioner behind it, against fauxqs.</summary>
public sealed class AwsProvisionerTests(SnsTopicTests.Fauxqs fauxqs, DynaliteFixture dynalite)
    : IClassFixture<SnsTopicTests.Fauxqs>, IClassFixture<DynaliteFixture>
{
    private static string Prefix() => $"t{Guid.NewGuid():N}"[..12];

    private AwsProvisioner Provisioner(SnsTopic sns, int maxReceiveCount = AwsProvisioner.DefaultMaxReceiveCount, bool tables = false) =>
        new(fauxqs.Sqs, sns, tables ? dynalite.Client : null, maxReceiveCount);

    private async Task<Dictionary<string, string>> AttributesAsync(string queueUrl) =>
        (await fauxqs.Sqs.GetQueueAttributesAsync(new GetQueueAttributesRequest { QueueUrl = queueUrl, AttributeNames = ["All"] },
            TestContext.Current.CancellationToken)).Attributes;

    [Fact]
    public async Task Provision_FromNothing_CreatesBothQueues_TheTopic_AndARawSubscription()
    {
        var token = TestContext.Current.CancellationToken;
        using var sns = fauxqs.Topic();
        var prefix = Prefix();

        var result = await Provisioner(sns).ProvisionAsync(prefix, token);

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
        Assert.Equal($"{prefix}-suppressions", r.SuppressionTable);
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
    public async Task Provision_WithDynamoDb_CreatesTheLogAndTheSuppressionTable_AndASecondRunNeither()
    {
        var token = TestContext.Current.CancellationToken;
        using var sns = fauxqs.Topic();
        var prefix = Prefix();

        var first = await Provisioner(sns, tables: true).ProvisionAsync(prefix, token);
        var second = await Provisioner(sns, tables: true).ProvisionAsync(prefix, token);

        Assert.Contains($"created table {prefix}-log", first.Changes);
        Assert.Contains($"created table {prefix}-suppressions", first.Changes);
        // dynalite has no TTL: both tables say so, every run, and nothing else changes the second time.
        Assert.Equal(
        [
            $"table {prefix}-log: this DynamoDB endpoint has no TTL, so finished messages are kept",
            $"table {prefix}-suppressions: this DynamoDB endpoint has no TTL, so expired bounces are kept (and ignored)",
        ], second.Changes);
        var index = Assert.Single((await dynalite.Client.DescribeTableAsync($"{prefix}-suppressions", token)).Table.GlobalSecondaryIndexes);
        Assert.Equal("by_address", index.IndexName);
        Assert.Equal(["list_pk", "address_key"], index.KeySchema.Select(k => k.AttributeName));
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

    [Fact]
    public async Task Provision_WithFeedback_CreatesATopicForSes_AndAQueueSubscribedWithTheEnvelope_AndASecondRunNothing()
    {
        var token = TestContext.Current.CancellationToken;
        using var sns = fauxqs.Topic();
        var prefix = Prefix();

        var first = await Provisioner(sns).ProvisionAsync(prefix, feedback: true, token);
        var second = await Provisioner(sns).ProvisionAsync(prefix, feedback: true, token);

        Assert.Equal(
        [
            $"created topic {prefix}-feedback",
            $"created queue {prefix}-feedback",
            $"subscribed queue {prefix}-feedback to topic {prefix}-feedback",
        ], first.Changes.Skip(4));
        Assert.Empty(second.Changes);
        var r = first.Resources;
        Assert.Equal(r, second.Resources);
        Assert.Equal($"arn:aws:sns:us-east-1:000000000000:{prefix}-feedback", r.FeedbackTopicArn);
        Assert.EndsWith($"/{prefix}-feedback", r.FeedbackQueueUrl, StringComparison.Ordinal);
        var attributes = await AttributesAsync(r.FeedbackQueueUrl!);
        Assert.Equal("1209600", attributes["MessageRetentionPeriod"]);
        var statement = Assert.Single(JsonNode.Parse(attributes["Policy"])!["Statement"]!.AsArray())!;
        Assert.Equal(r.FeedbackTopicArn, statement["Condition"]!["ArnEquals"]!["aws:SourceArn"]!.GetValue<string>());
        Assert.Equal(attributes["QueueArn"], statement["Resource"]!.GetValue<string>());
        // Not raw: the queue holds SNS's envelope, as with SES's topics in AWS's own set-ups.
        var subscription = await sns.FindQueueSubscriptionAsync(r.FeedbackTopicArn!, attributes["QueueArn"], token);
        Assert.NotNull(subscription);
        Assert.NotEqual("true", (await sns.GetSubscriptionAttributesAsync(subscription, token)).GetValueOrDefault("RawMessageDelivery"));
        await sns.PublishAsync(r.FeedbackTopicArn!, "{}", new Dictionary<string, string>(), token);
        Assert.Equal("Notification", JsonNode.Parse((await fauxqs.ReceiveOneAsync(r.FeedbackQueueUrl!)).Body)!["Type"]!.GetValue<string>());
        // Without it, nothing of the feedback's is made or named.
        var without = (await Provisioner(sns).ProvisionAsync(Prefix(), token)).Resources;
        Assert.Null(without.FeedbackQueueUrl);
        Assert.Null(without.FeedbackTopicArn);
    }

    [Fact]
    public async Task Provision_WithAWebhook_CreatesTheEventsTopic_AndTheWebhooksQueueWithItsDeadLetters_RawOnTheTopic_AndASecondRunNothing()
    {
        var token = TestContext.Current.CancellationToken;
        using var sns = fauxqs.Topic();
        var prefix = Prefix();

        var first = await Provisioner(sns).ProvisionAsync(prefix, new ProvisionExtras(Webhooks: ["crm"]), token);
        var second = await Provisioner(sns).ProvisionAsync(prefix, new ProvisionExtras(Events: true, Webhooks: ["crm"]), token);

        Assert.Equal(
        [
            $"created topic {prefix}-events",
            $"created queue {prefix}-webhook-crm-dead",
            $"created queue {prefix}-webhook-crm",
            $"subscribed queue {prefix}-webhook-crm to topic {prefix}-events with raw delivery",
        ], first.Changes.Skip(4));
        Assert.Empty(second.Changes);
        var r = first.Resources;
        Assert.Equal($"arn:aws:sns:us-east-1:000000000000:{prefix}-events", r.EventsTopicArn);
        Assert.Equal(r.EventsTopicArn, second.Resources.EventsTopicArn);
        var queueUrl = Assert.Single(r.WebhookQueueUrls!, w => w.Key == "crm").Value;
        Assert.Equal(queueUrl, second.Resources.WebhookQueueUrls!["crm"]);
        var attributes = await AttributesAsync(queueUrl);
        Assert.EndsWith($":{prefix}-webhook-crm-dead", JsonNode.Parse(attributes["RedrivePolicy"])!["deadLetterTargetArn"]!.GetValue<string>(), StringComparison.Ordinal);
        var subscription = await sns.FindQueueSubscriptionAsync(r.EventsTopicArn!, attributes["QueueArn"], token);
        Assert.Equal("true", (await sns.GetSubscriptionAttributesAsync(subscription!, token))["RawMessageDelivery"]);
        // The events topic alone, for other services to subscribe to; nothing of it without asking.
        var eventsOnly = (await Provisioner(sns).ProvisionAsync(Prefix(), new ProvisionExtras(Events: true), token)).Resources;
        Assert.NotNull(eventsOnly.EventsTopicArn);
        Assert.Null(eventsOnly.WebhookQueueUrls);
        Assert.Null((await Provisioner(sns).ProvisionAsync(Prefix(), token)).Resources.EventsTopicArn);
        Assert.Contains("webhook name", AwsProvisioner.CheckWebhookName(prefix, "has space"), StringComparison.Ordinal);
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

    [Fact]
    public async Task ProvisionCommand_PrintsTheExportLines_AndTheSameOnASecondRun()
    {
        var prefix = Prefix();
        string[] args = ["aws", "provision", "--prefix", prefix, "--Ion:Aws:Region", "us-east-1", "--Ion:Aws:ServiceUrl", fauxqs.Url,
            "--Ion:Aws:DynamoDbServiceUrl", dynalite.Url];

        var first = await RunIonAsync(args);
        var second = await RunIonAsync(args);

        Assert.True(first.ExitCode == 0, first.Error);
        Assert.Equal(
            $"""
            Ion__Store=Aws
            Ion__Aws__Region=us-east-1
            Ion__Aws__QueueUrl={(await fauxqs.Sqs.GetQueueUrlAsync($"{prefix}-mail", TestContext.Current.CancellationToken)).QueueUrl}
            Ion__Aws__DeadLetterQueueUrl={(await fauxqs.Sqs.GetQueueUrlAsync($"{prefix}-dead-letters", TestContext.Current.CancellationToken)).QueueUrl}
            Ion__Aws__TopicArn=arn:aws:sns:us-east-1:000000000000:{prefix}-mail
            Ion__Aws__TableName={prefix}-log
            Ion__Aws__SuppressionTable={prefix}-suppressions
            Ion__Aws__ServiceUrl={fauxqs.Url}
            Ion__Aws__DynamoDbServiceUrl={dynalite.Url}

            """, first.Out);
        Assert.Contains($"created topic {prefix}-mail", first.Error, StringComparison.Ordinal);
        Assert.Contains($"created table {prefix}-log", first.Error, StringComparison.Ordinal);
        Assert.Contains($"created table {prefix}-suppressions", first.Error, StringComparison.Ordinal);
        var table = (await dynalite.Client.DescribeTableAsync($"{prefix}-log", TestContext.Current.CancellationToken)).Table;
        Assert.Contains(table.GlobalSecondaryIndexes, i => i.IndexName == "dead_letters");
        var suppressions = (await dynalite.Client.DescribeTableAsync($"{prefix}-suppressions", TestContext.Current.CancellationToken)).Table;
        Assert.Equal("address_key", Assert.Single(suppressions.KeySchema).AttributeName);
        Assert.Contains(suppressions.GlobalSecondaryIndexes, i => i.IndexName == "by_address");
        Assert.Equal(0, second.ExitCode);
        Assert.Equal(first.Out, second.Out);
        Assert.DoesNotContain("created", second.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProvisionCommand_WithFeedback_PrintsTheFeedbackQueueUrl_AndNamesTheTopicForSes()
    {
        var prefix = Prefix();
        string[] args = ["aws", "provision", "--prefix", prefix, "--feedback", "--Ion:Aws:Region", "us-east-1", "--Ion:Aws:ServiceUrl", fauxqs.Url,
            "--Ion:Aws:DynamoDbServiceUrl", dynalite.Url];

        var first = await RunIonAsync(args);
        var second = await RunIonAsync(args);

        Assert.True(first.ExitCode == 0, first.Error);
        var url = (await fauxqs.Sqs.GetQueueUrlAsync($"{prefix}-feedback", TestContext.Current.CancellationToken)).QueueUrl;
        var lines = first.Out.Split('\n');
        Assert.Equal($"Ion__Aws__FeedbackQueueUrl={url}", lines[Array.IndexOf(lines, $"Ion__Aws__SuppressionTable={prefix}-suppressions") + 1]);
        Assert.Contains($"have SES publish bounces and complaints to arn:aws:sns:us-east-1:000000000000:{prefix}-feedback", first.Error, StringComparison.Ordinal);
        Assert.Equal(0, second.ExitCode);
        Assert.Equal(first.Out, second.Out);
        Assert.DoesNotContain("created", second.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProvisionCommand_WithPayloads_CreatesTheBucketWithAnExpiryRule_PrintsItsSetting_AndASecondRunChangesNothing()
    {
        var token = TestContext.Current.CancellationToken;
        var prefix = Prefix();
        string[] args = ["aws", "provision", "--prefix", prefix, "--payloads", "--Ion:Aws:Region", "us-east-1", "--Ion:Aws:ServiceUrl", fauxqs.Url,
            "--Ion:Aws:DynamoDbServiceUrl", dynalite.Url];

        var first = await RunIonAsync(args);
        var second = await RunIonAsync(args);

        Assert.True(first.ExitCode == 0, first.Error);
        var bucket = $"{prefix}-payloads-000000000000-us-east-1";
        Assert.Contains($"Ion__Aws__PayloadBucket={bucket}", first.Out.Split('\n'));
        Assert.Contains($"created bucket {bucket}", first.Error, StringComparison.Ordinal);
        using var s3 = new Amazon.S3.AmazonS3Client(fauxqs.Credentials,
            new Amazon.S3.AmazonS3Config { ServiceURL = fauxqs.Url, AuthenticationRegion = "us-east-1", ForcePathStyle = true });
        var rules = (await s3.GetLifecycleConfigurationAsync(new Amazon.S3.Model.GetLifecycleConfigurationRequest { BucketName = bucket }, token)).Configuration.Rules;
        var rule = Assert.Single(rules);
        Assert.Equal(14, rule.Expiration.Days);
        Assert.Equal(Amazon.S3.LifecycleRuleStatus.Enabled, rule.Status);
        Assert.Equal(0, second.ExitCode);
        Assert.Equal(first.Out, second.Out);
        Assert.DoesNotContain("created", second.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("lifecycle", second.Error, StringComparison.Ordinal);

        // S3's names are global and at most 63 characters: a prefix that cannot name the bucket is refused, in one line.
        var tooLong = await RunIonAsync(["aws", "provision", "--prefix", "p" + new string('x', 40), "--payloads", "--Ion:Aws:Region", "us-east-1",
            "--Ion:Aws:ServiceUrl", fauxqs.Url, "--Ion:Aws:DynamoDbServiceUrl", dynalite.Url]);
        Assert.Equal(2, tooLong.ExitCode);
        Assert.Contains("is no valid S3 bucket name (at most 63 characters): use a shorter prefix", Assert.Single(tooLong.Error.Trim().Split('\n')), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProvisionCommand_WithoutARegion_Exits2_WithOneLineNamingTheSetting()
    {
        var result = await RunIonAsync(["aws", "provision", "--Ion:Aws:ServiceUrl", fauxqs.Url]);

        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.Error.Trim().Split('\n'));
        Assert.Contains("Ion:Aws:Region", line, StringComparison.Ordinal);
        Assert.Equal("", result.Out);
    }

    [Fact]
    public async Task ProvisionCommand_WhenNothingAnswers_Exits1_WithOneLine()
    {
        var result = await RunIonAsync(["aws", "provision", "--Ion:Aws:Region", "us-east-1",
            "--Ion:Aws:ServiceUrl", $"http://127.0.0.1:{Ports.Free()}"]);

        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.Error.Trim().Split('\n'));
        Assert.StartsWith("ion: SQS (http://127.0.0.1:", line, StringComparison.Ordinal);
        Assert.Equal("", result.Out);
    }

    /// <summary>The built ion as its own process with emulator credentials in its environment (IonCli passes none),
    /// and nothing of this machine's Ion settings.</summary>
    private static async Task<IonCli.Result> RunIonAsync(IEnumerable<string> args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(IonProcess.IonDll());
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("Ion__", StringComparison.OrdinalIgnoreCase) || k.StartsWith("AWS_", StringComparison.Ordinal)).ToList())
            info.Environment.Remove(key);
        info.Environment["AWS_ACCESS_KEY_ID"] = "test";
        info.Environment["AWS_SECRET_ACCESS_KEY"] = "test";
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start ion");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return new IonCli.Result(process.ExitCode, await stdout, await stderr);
    }
}
