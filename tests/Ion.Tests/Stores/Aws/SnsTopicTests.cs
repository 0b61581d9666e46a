using System.Net;
using System.Text;
using Amazon.Runtime;
using Amazon.Runtime.Credentials;
using Amazon.SQS;
using Amazon.SQS.Model;
using Ion.Queues;
using Ion.Stores.Aws;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Stores.Aws;

/// <summary>ion's hand-written SNS calls against fauxqs (SNS and SQS on one endpoint), signed by AWSSDK.Core.</summary>
public sealed class SnsTopicTests(SnsTopicTests.Fauxqs fauxqs) : IClassFixture<SnsTopicTests.Fauxqs>
{
    private const string Original = """{"action":"send","recipient":"a@example.com","subject":"Hi ✓ & <p>","body_text":"x"}""";

    /// <summary>fauxqs, an SQS client for looking at queues, and credentials from the standard chain (the emulator
    /// takes any, so the test process gets <c>test</c>/<c>test</c> unless it has some).</summary>
    public sealed class Fauxqs : IAsyncLifetime
    {
        private NodeTool? _tool;

        public string Url => _tool!.Url;
        public AWSCredentials Credentials { get; private set; } = null!;
        public AmazonSQSClient Sqs { get; private set; } = null!;

        public async ValueTask InitializeAsync()
        {
            if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID")))
            {
                Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", "test");
                Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", "test");
            }
            Credentials = await DefaultAWSCredentialsIdentityResolver.GetCredentialsAsync();
            _tool = await NodeTool.StartFauxqsAsync();
            Sqs = new AmazonSQSClient(Credentials, new AmazonSQSConfig { ServiceURL = Url, AuthenticationRegion = "us-east-1" });
        }

        /// <summary>An SnsTopic on fauxqs, with credentials from the standard chain.</summary>
        public SnsTopic Topic(DelegatingHandler? outer = null) => new("us-east-1", Url, outerHandler: outer);

        /// <summary>A new queue; its URL and ARN.</summary>
        public async Task<(string Url, string Arn)> QueueAsync(string name)
        {
            var token = TestContext.Current.CancellationToken;
            var url = (await Sqs.CreateQueueAsync(name, token)).QueueUrl;
            var attributes = await Sqs.GetQueueAttributesAsync(new GetQueueAttributesRequest { QueueUrl = url, AttributeNames = ["QueueArn"] }, token);
            return (url, attributes.Attributes["QueueArn"]);
        }

        public async Task<Message> ReceiveOneAsync(string queueUrl)
        {
            var received = await Sqs.ReceiveMessageAsync(new ReceiveMessageRequest(queueUrl)
            {
                WaitTimeSeconds = 5,
                MessageAttributeNames = ["All"],
            }, TestContext.Current.CancellationToken);
            return Assert.Single(received.Messages ?? []);
        }

        public async ValueTask DisposeAsync()
        {
            Sqs?.Dispose();
            if (_tool is not null)
                await _tool.DisposeAsync();
        }
    }

    /// <summary>Placed outside the signer: sees each request as it went out, signature included.</summary>
    private sealed class RecordingHandler : DelegatingHandler
    {
        public List<HttpRequestMessage> Requests { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Requests.Add(request);
            return base.SendAsync(request, cancellationToken);
        }
    }

    private static string Name(string what) => $"{what}-{Guid.NewGuid():N}";

    [Fact]
    public async Task Publish_ThroughARawDeliverySubscription_ArrivesByteForByte_WithTheAttributes()
    {
        var token = TestContext.Current.CancellationToken;
        using var sns = fauxqs.Topic();
        var queue = await fauxqs.QueueAsync(Name("raw"));
        var topicArn = await sns.CreateTopicAsync(Name("raw"), token);
        await sns.SubscribeQueueAsync(topicArn, queue.Arn, rawDelivery: true, token);

        var messageId = await sns.PublishAsync(topicArn, Original,
            new Dictionary<string, string> { ["ion-id"] = "m-1", ["tenant"] = "acme & co ✓" }, token);

        var message = await fauxqs.ReceiveOneAsync(queue.Url);
        Assert.False(string.IsNullOrEmpty(messageId));
        Assert.Equal(Encoding.UTF8.GetBytes(Original), Encoding.UTF8.GetBytes(message.Body));
        Assert.Equal(["ion-id", "tenant"], message.MessageAttributes.Keys.Order());
        Assert.Equal("m-1", message.MessageAttributes["ion-id"].StringValue);
        Assert.Equal("String", message.MessageAttributes["ion-id"].DataType);
        Assert.Equal("acme & co ✓", message.MessageAttributes["tenant"].StringValue);
    }

    [Fact]
    public async Task Requests_CarryASigV4Signature_ForSnsInTheRegion()
    {
        var recorder = new RecordingHandler();
        using var sns = fauxqs.Topic(recorder);

        await sns.CreateTopicAsync(Name("signed"), TestContext.Current.CancellationToken);

        var request = Assert.Single(recorder.Requests);
        var authorization = Assert.Single(request.Headers.GetValues("Authorization"));
        var key = (await fauxqs.Credentials.GetCredentialsAsync()).AccessKey;
        Assert.Matches($@"^AWS4-HMAC-SHA256 Credential={key}/\d{{8}}/us-east-1/sns/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{{64}}$",
            authorization);
        Assert.True(request.Headers.Contains("X-Amz-Date"));
        Assert.Equal(HttpMethod.Post, request.Method);
    }

    [Fact]
    public async Task CreateTopic_AndSubscribe_AskedTwice_GiveTheSameArns()
    {
        var token = TestContext.Current.CancellationToken;
        using var sns = fauxqs.Topic();
        var queue = await fauxqs.QueueAsync(Name("twice"));
        var name = Name("twice");

        var topicArn = await sns.CreateTopicAsync(name, token);
        var subscriptionArn = await sns.SubscribeQueueAsync(topicArn, queue.Arn, rawDelivery: true, token);

        Assert.Equal(topicArn, await sns.CreateTopicAsync(name, token));
        Assert.Equal(subscriptionArn, await sns.SubscribeQueueAsync(topicArn, queue.Arn, rawDelivery: true, token));
        Assert.Equal(subscriptionArn, await sns.FindQueueSubscriptionAsync(topicArn, queue.Arn, token));
        Assert.Equal("true", (await sns.GetSubscriptionAttributesAsync(subscriptionArn, token))["RawMessageDelivery"]);
    }

    [Fact]
    public async Task Publish_AtExactlyTheLimit_CountingTheAttributes_IsAccepted()
    {
        var token = TestContext.Current.CancellationToken;
        using var sns = fauxqs.Topic();
        var topicArn = await sns.CreateTopicAsync(Name("limit"), token);
        var attributes = new Dictionary<string, string> { ["ion-id"] = "m-1" };
        var body = new string('x', SnsTopic.MaxMessageBytes - "ion-id".Length - "String".Length - "m-1".Length);

        Assert.Equal(SnsTopic.MaxMessageBytes, SnsTopic.MessageSize(body, attributes));
        Assert.False(string.IsNullOrEmpty(await sns.PublishAsync(topicArn, body, attributes, token)));
    }

    [Fact]
    public async Task Publish_OverTheLimit_IsRefusedBeforeAnythingIsSent_NamingTheLimitAndTheSize()
    {
        var recorder = new RecordingHandler();
        using var sns = fauxqs.Topic(recorder);
        // One byte over, made of a three-byte character so the count is in UTF-8 bytes, not characters.
        var body = new string('x', SnsTopic.MaxMessageBytes - "id".Length - "String".Length - "1".Length - 2) + "✓";

        var error = await Assert.ThrowsAsync<ArgumentException>(() => sns.PublishAsync("arn:aws:sns:us-east-1:000000000000:any",
            body, new Dictionary<string, string> { ["id"] = "1" }, TestContext.Current.CancellationToken));

        Assert.Contains("262,144 bytes", error.Message, StringComparison.Ordinal);
        Assert.Contains("262,145 bytes", error.Message, StringComparison.Ordinal);
        Assert.Equal("message", error.ParamName);
        Assert.Empty(recorder.Requests);
    }

    [Fact]
    public async Task Publish_WithMoreAttributesThanSqsCarries_IsRefusedBeforeAnythingIsSent()
    {
        var recorder = new RecordingHandler();
        using var sns = fauxqs.Topic(recorder);
        var attributes = Enumerable.Range(1, SnsTopic.MaxAttributes + 1).ToDictionary(i => $"a{i}", i => "v");

        var error = await Assert.ThrowsAsync<ArgumentException>(() => sns.PublishAsync("arn:aws:sns:us-east-1:000000000000:any",
            "{}", attributes, TestContext.Current.CancellationToken));

        Assert.Contains("11 attributes", error.Message, StringComparison.Ordinal);
        Assert.Empty(recorder.Requests);
    }

    [Fact]
    public async Task Publish_ToATopicThatDoesNotExist_GivesSnsCodeAndMessage()
    {
        using var sns = fauxqs.Topic();
        var missing = "arn:aws:sns:us-east-1:000000000000:" + Name("missing");

        var error = await Assert.ThrowsAsync<SnsException>(() => sns.PublishAsync(missing, "{}",
            new Dictionary<string, string>(), TestContext.Current.CancellationToken));

        Assert.Equal("NotFound", error.Code);
        Assert.Equal("Topic does not exist", error.SnsMessage);
        Assert.Equal(HttpStatusCode.NotFound, error.StatusCode);
        Assert.Equal("Publish", error.Action);
        Assert.Contains(missing, error.Message, StringComparison.Ordinal);
        Assert.False(await sns.TopicExistsAsync(missing, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Publish_WhenNothingAnswers_IsStoreUnavailable_NamingTheActionAndTopic()
    {
        using var sns = new SnsTopic("us-east-1", $"http://127.0.0.1:{Ports.Free()}");
        const string topic = "arn:aws:sns:us-east-1:000000000000:gone";

        var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => sns.PublishAsync(topic, "{}",
            new Dictionary<string, string>(), TestContext.Current.CancellationToken));

        Assert.Contains("SNS Publish on " + topic, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(503, "ServiceUnavailable")]
    [InlineData(500, "InternalError")]
    [InlineData(400, "Throttling")]
    [InlineData(429, "Throttled")]
    public async Task Publish_ServerErrorsAndThrottling_AreStoreUnavailable(int status, string code)
    {
        await using var server = await ErrorServer.StartAsync(status, code);
        using var sns = new SnsTopic("us-east-1", server.Url);

        var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => sns.PublishAsync("arn:aws:sns:us-east-1:000000000000:busy", "{}",
            new Dictionary<string, string>(), TestContext.Current.CancellationToken));

        Assert.Contains("SNS Publish on arn:aws:sns:us-east-1:000000000000:busy", error.Message, StringComparison.Ordinal);
        Assert.Contains(code, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Publish_Refused_AuthorizationError_IsSnsException_WithTheCode()
    {
        await using var server = await ErrorServer.StartAsync(403, "AuthorizationError");
        using var sns = new SnsTopic("us-east-1", server.Url);

        var error = await Assert.ThrowsAsync<SnsException>(() => sns.PublishAsync("arn:aws:sns:us-east-1:000000000000:locked", "{}",
            new Dictionary<string, string>(), TestContext.Current.CancellationToken));

        Assert.Equal("AuthorizationError", error.Code);
        Assert.Equal("refused by the test", error.SnsMessage);
        Assert.Equal(HttpStatusCode.Forbidden, error.StatusCode);
    }

    /// <summary>An HTTP server on 127.0.0.1 that answers every request with one SNS <c>ErrorResponse</c>, for the
    /// errors fauxqs never gives (5xx, throttling, authorization).</summary>
    private sealed class ErrorServer : IAsyncDisposable
    {
        private readonly HttpListener _listener;
        private readonly Task _loop;

        private ErrorServer(HttpListener listener, Task loop, string url)
        {
            _listener = listener;
            _loop = loop;
            Url = url;
        }

        public string Url { get; }

        public static Task<ErrorServer> StartAsync(int status, string code)
        {
            var url = $"http://127.0.0.1:{Ports.Free()}/";
            var listener = new HttpListener();
            listener.Prefixes.Add(url);
            listener.Start();
            var body = Encoding.UTF8.GetBytes($"""
                <ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
                  <Error><Type>Sender</Type><Code>{code}</Code><Message>refused by the test</Message></Error>
                  <RequestId>test</RequestId>
                </ErrorResponse>
                """);
            var loop = Task.Run(async () =>
            {
                while (listener.IsListening)
                {
                    HttpListenerContext context;
                    try
                    {
                        context = await listener.GetContextAsync();
                    }
                    catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                    {
                        return;
                    }
                    context.Response.StatusCode = status;
                    context.Response.ContentType = "text/xml";
                    await context.Response.OutputStream.WriteAsync(body);
                    context.Response.Close();
                }
            });
            return Task.FromResult(new ErrorServer(listener, loop, url));
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            _listener.Close();
            await _loop;
        }
    }
}
