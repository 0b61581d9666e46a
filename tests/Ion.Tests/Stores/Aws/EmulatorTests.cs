using Amazon.DynamoDBv2;
using Amazon.Runtime;
using Amazon.SQS;
using Amazon.SQS.Model;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Stores.Aws;

/// <summary>The emulators the AWS store is tested against start on 127.0.0.1 and answer the AWS SDK.</summary>
public class EmulatorTests
{
    [Fact]
    public async Task Fauxqs_And_Dynalite_AnswerTheSdk()
    {
        var token = TestContext.Current.CancellationToken;
        await using var fauxqs = await NodeTool.StartFauxqsAsync();
        await using var dynalite = await NodeTool.StartDynaliteAsync();
        var credentials = new BasicAWSCredentials("test", "test");
        using var sqs = new AmazonSQSClient(credentials, new AmazonSQSConfig { ServiceURL = fauxqs.Url, AuthenticationRegion = "us-east-1" });
        using var dynamo = new AmazonDynamoDBClient(credentials, new AmazonDynamoDBConfig { ServiceURL = dynalite.Url, AuthenticationRegion = "us-east-1" });

        var queue = await sqs.CreateQueueAsync(new CreateQueueRequest("smoke"), token);
        await sqs.SendMessageAsync(queue.QueueUrl, "hello", token);
        var received = await sqs.ReceiveMessageAsync(new ReceiveMessageRequest(queue.QueueUrl) { WaitTimeSeconds = 1 }, token);

        Assert.Equal("hello", Assert.Single(received.Messages).Body);
        Assert.Empty((await dynamo.ListTablesAsync(token)).TableNames ?? []);
    }
}
