using System.Globalization;
using System.Net;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using Amazon;
using Amazon.Runtime;
using Amazon.Runtime.Credentials;
using Amazon.Runtime.Signing;
using Ion.Queues;

namespace Ion.Stores.Aws;

/// <summary>
/// The few SNS calls ion makes (publish; create a topic and subscribe a queue for <c>ion aws provision</c>), over the
/// SNS Query API. Hand-written because the SNS SDK package (AWSSDK.SimpleNotificationService) is not available to this
/// build; AWSSDK.Core's own <see cref="SigV4SigningHandler"/> does the signing, so the only SNS-specific code here is
/// form fields and XML, and this is the one place ion speaks SNS by hand.
/// </summary>
public sealed class SnsTopic : IDisposable
{
    /// <summary>SNS refuses a message larger than this, counting the body and every attribute's name, type and value.</summary>
    public const int MaxMessageBytes = 262_144;

    /// <summary>With raw delivery SNS hands the attributes to SQS, which refuses a message with more than 10: the
    /// message would be lost after SNS accepted it.</summary>
    public const int MaxAttributes = 10;

    /// <summary>The most messages one PublishBatch takes.</summary>
    public const int MaxBatchEntries = 10;

    // Codes SNS (and the AWS front door) give a request that may well succeed if asked again.
    private static readonly HashSet<string> Transient = new(StringComparer.Ordinal)
    {
        "Throttling", "Throttled", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
        "TooManyRequestsException", "KMSThrottling", "ServiceUnavailable", "InternalError", "InternalFailure",
    };

    private readonly HttpClient _http;
    private readonly Uri _endpoint;

    /// <param name="serviceUrl">An emulator's endpoint; null for AWS's, <c>https://sns.{region}.amazonaws.com/</c>.</param>
    /// <param name="credentials">Null for the standard chain (environment, profile, web identity, container or instance
    /// role), resolved here so that having none fails at start-up (<see cref="AmazonClientException"/>). The signer asks
    /// them for keys on every request, so expiring credentials renew themselves.</param>
    /// <param name="outerHandler">Runs before the signer, so a retry handler placed here signs each attempt afresh.</param>
    public SnsTopic(string region, string? serviceUrl = null, AWSCredentials? credentials = null, DelegatingHandler? outerHandler = null)
    {
        var regionEndpoint = RegionEndpoint.GetBySystemName(region);
        _endpoint = new Uri(string.IsNullOrWhiteSpace(serviceUrl)
            ? $"https://sns.{region}.{regionEndpoint.PartitionDnsSuffix}/"
            : serviceUrl);
        // The signer's documentation asks for no automatic redirects: a redirected request would not be re-signed.
        HttpMessageHandler handler = new SigV4SigningHandler(credentials ?? DefaultAWSCredentialsIdentityResolver.GetCredentials(), regionEndpoint, "sns",
            new SocketsHttpHandler { AllowAutoRedirect = false });
        if (outerHandler is not null)
        {
            outerHandler.InnerHandler = handler;
            handler = outerHandler;
        }
        _http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>The size SNS counts against <see cref="MaxMessageBytes"/>: UTF-8 bytes of the body and of each
    /// attribute's name, data type (<c>String</c>) and value.</summary>
    public static int MessageSize(string message, IReadOnlyDictionary<string, string> stringAttributes) =>
        Encoding.UTF8.GetByteCount(message)
        + stringAttributes.Sum(a => Encoding.UTF8.GetByteCount(a.Key) + "String".Length + Encoding.UTF8.GetByteCount(a.Value));

    /// <summary>Publishes <paramref name="message"/> with string attributes; returns SNS's message id.</summary>
    /// <exception cref="ArgumentException">The message is over <see cref="MaxMessageBytes"/> or has more than
    /// <see cref="MaxAttributes"/> attributes; nothing was sent.</exception>
    public async Task<string> PublishAsync(string topicArn, string message, IReadOnlyDictionary<string, string> stringAttributes,
        CancellationToken cancellationToken)
    {
        var size = MessageSize(message, stringAttributes);
        if (size > MaxMessageBytes)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"the message is {size:N0} bytes with its attributes; SNS accepts at most {MaxMessageBytes:N0} bytes (256 KB)"), nameof(message));
        }
        if (stringAttributes.Count > MaxAttributes)
        {
            throw new ArgumentException(
                $"the message has {stringAttributes.Count} attributes; raw delivery to SQS carries at most {MaxAttributes}", nameof(stringAttributes));
        }
        List<KeyValuePair<string, string>> form = [new("TopicArn", topicArn), new("Message", message)];
        AddAttributes(form, "", stringAttributes);
        var reply = await CallAsync("Publish", topicArn, form, cancellationToken);
        return Value(reply, "MessageId", "Publish", topicArn);
    }

    /// <summary>SNS's PublishBatch: up to <see cref="MaxBatchEntries"/> messages, at most <see cref="MaxMessageBytes"/>
    /// together. Returns the entries SNS refused, by <see cref="TopicEntry.EntryId"/>, with its reason; the others are
    /// published.</summary>
    public async Task<IReadOnlyDictionary<string, string>> PublishBatchAsync(string topicArn, IReadOnlyList<TopicEntry> entries,
        CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(entries.Count, MaxBatchEntries);
        var size = entries.Sum(e => MessageSize(e.Message, e.Attributes));
        if (size > MaxMessageBytes)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"the batch is {size:N0} bytes with its attributes; SNS accepts at most {MaxMessageBytes:N0} bytes (256 KB)"), nameof(entries));
        }
        List<KeyValuePair<string, string>> form = [new("TopicArn", topicArn)];
        for (var i = 0; i < entries.Count; i++)
        {
            var member = $"PublishBatchRequestEntries.member.{i + 1}.";
            form.Add(new(member + "Id", entries[i].EntryId));
            form.Add(new(member + "Message", entries[i].Message));
            AddAttributes(form, member, entries[i].Attributes);
        }
        var reply = await CallAsync("PublishBatch", topicArn, form, cancellationToken);
        return Elements(reply, "Failed").SelectMany(f => f.Elements()).ToDictionary(
            m => Child(m, "Id") ?? "", m => $"{Child(m, "Code")}: {Child(m, "Message")}", StringComparer.Ordinal);
    }

    /// <summary>Creates the topic, or returns the ARN of the one with that name (SNS's CreateTopic is idempotent).</summary>
    public async Task<string> CreateTopicAsync(string name, CancellationToken cancellationToken)
    {
        var reply = await CallAsync("CreateTopic", name, [new("Name", name)], cancellationToken);
        return Value(reply, "TopicArn", "CreateTopic", name);
    }

    public async Task<bool> TopicExistsAsync(string topicArn, CancellationToken cancellationToken)
    {
        try
        {
            await CallAsync("GetTopicAttributes", topicArn, [new("TopicArn", topicArn)], cancellationToken);
            return true;
        }
        catch (SnsException error) when (error.Code == "NotFound")
        {
            return false;
        }
    }

    /// <summary>Subscribes an SQS queue; returns the subscription ARN. Asking again with the same attributes returns
    /// the same subscription; SNS refuses it (<c>InvalidParameter</c>) when the existing one has other attributes.</summary>
    public async Task<string> SubscribeQueueAsync(string topicArn, string queueArn, bool rawDelivery, CancellationToken cancellationToken)
    {
        List<KeyValuePair<string, string>> form =
        [
            new("TopicArn", topicArn), new("Protocol", "sqs"), new("Endpoint", queueArn), new("ReturnSubscriptionArn", "true"),
        ];
        if (rawDelivery)
        {
            form.Add(new("Attributes.entry.1.key", "RawMessageDelivery"));
            form.Add(new("Attributes.entry.1.value", "true"));
        }
        var reply = await CallAsync("Subscribe", topicArn, form, cancellationToken);
        return Value(reply, "SubscriptionArn", "Subscribe", topicArn);
    }

    /// <summary>The ARN of the topic's subscription delivering to <paramref name="queueArn"/>, or null.</summary>
    public async Task<string?> FindQueueSubscriptionAsync(string topicArn, string queueArn, CancellationToken cancellationToken)
    {
        string? next = null;
        do
        {
            List<KeyValuePair<string, string>> form = [new("TopicArn", topicArn)];
            if (next is not null)
                form.Add(new("NextToken", next));
            var reply = await CallAsync("ListSubscriptionsByTopic", topicArn, form, cancellationToken);
            var found = Elements(reply, "member").FirstOrDefault(m => Child(m, "Protocol") == "sqs" && Child(m, "Endpoint") == queueArn);
            if (found is not null)
                return Child(found, "SubscriptionArn");
            next = Elements(reply, "NextToken").FirstOrDefault()?.Value;
        }
        while (!string.IsNullOrEmpty(next));
        return null;
    }

    public async Task<IReadOnlyDictionary<string, string>> GetSubscriptionAttributesAsync(string subscriptionArn, CancellationToken cancellationToken)
    {
        var reply = await CallAsync("GetSubscriptionAttributes", subscriptionArn, [new("SubscriptionArn", subscriptionArn)], cancellationToken);
        return Elements(reply, "entry").ToDictionary(e => Child(e, "key") ?? "", e => Child(e, "value") ?? "", StringComparer.Ordinal);
    }

    public Task SetSubscriptionAttributeAsync(string subscriptionArn, string name, string value, CancellationToken cancellationToken) =>
        CallAsync("SetSubscriptionAttributes", subscriptionArn,
            [new("SubscriptionArn", subscriptionArn), new("AttributeName", name), new("AttributeValue", value)], cancellationToken);

    private static void AddAttributes(List<KeyValuePair<string, string>> form, string prefix, IReadOnlyDictionary<string, string> attributes)
    {
        var n = 0;
        foreach (var (name, value) in attributes)
        {
            var entry = $"{prefix}MessageAttributes.entry.{++n}.";
            form.Add(new(entry + "Name", name));
            form.Add(new(entry + "Value.DataType", "String"));
            form.Add(new(entry + "Value.StringValue", value));
        }
    }

    public void Dispose() => _http.Dispose();

    /// <summary>One Query API call: the reply's root element, or the error as <see cref="StoreUnavailableException"/>
    /// (may succeed later) or <see cref="SnsException"/> (SNS refused). No retries here: a publish that timed out may
    /// have been published, and the caller, who knows the message's id, decides.</summary>
    private async Task<XElement> CallAsync(string action, string target, IEnumerable<KeyValuePair<string, string>> parameters,
        CancellationToken cancellationToken)
    {
        using var content = new FormUrlEncodedContent([new("Action", action), new("Version", "2010-03-31"), .. parameters]);
        HttpResponseMessage response;
        try
        {
            response = await _http.PostAsync(_endpoint, content, cancellationToken);
        }
        catch (HttpRequestException error)
        {
            throw Unavailable(action, target, error.Message, error);
        }
        catch (TaskCanceledException error) when (!cancellationToken.IsCancellationRequested)
        {
            throw Unavailable(action, target, $"no reply within {_http.Timeout.TotalSeconds:0} s", error);
        }
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            XElement? root;
            try
            {
                root = XDocument.Parse(body).Root;
            }
            catch (XmlException)
            {
                root = null;
            }
            if (response.IsSuccessStatusCode && root is not null && root.Name.LocalName != "ErrorResponse")
                return root;
            var error = root is null ? null : Elements(root, "Error").FirstOrDefault();
            var status = (int)response.StatusCode;
            var code = Child(error, "Code") ?? status.ToString(CultureInfo.InvariantCulture);
            var message = Child(error, "Message") ?? response.ReasonPhrase ?? "";
            if (status >= 500 || response.StatusCode == HttpStatusCode.TooManyRequests || Transient.Contains(code) || error is null)
                throw Unavailable(action, target, $"{status} {code}: {message}", null);
            throw new SnsException(action, target, code, message, response.StatusCode);
        }
    }

    private static StoreUnavailableException Unavailable(string action, string target, string reason, Exception? inner) =>
        new($"SNS {action} on {target} failed: {reason}", inner);

    private static string Value(XElement reply, string name, string action, string target) =>
        Elements(reply, name).FirstOrDefault()?.Value
        ?? throw new StoreUnavailableException($"SNS {action} on {target}: the reply has no {name}");

    // By local name: SNS qualifies its replies with its namespace, and what matters here is only the element's name.
    private static IEnumerable<XElement> Elements(XElement root, string name) => root.Descendants().Where(e => e.Name.LocalName == name);

    private static string? Child(XElement? parent, string name) => parent?.Elements().FirstOrDefault(e => e.Name.LocalName == name)?.Value;
}

/// <summary>SNS refused a call (a 4xx <c>ErrorResponse</c>: <c>NotFound</c>, <c>InvalidParameter</c>,
/// <c>AuthorizationError</c>…); asking again the same way will not help.</summary>
public sealed class SnsException(string action, string target, string code, string snsMessage, HttpStatusCode statusCode)
    : Exception($"SNS {action} on {target}: {code}: {snsMessage}")
{
    public string Action { get; } = action;

    /// <summary>SNS's error code, e.g. <c>NotFound</c>.</summary>
    public string Code { get; } = code;

    /// <summary>SNS's own message, e.g. <c>Topic does not exist</c>.</summary>
    public string SnsMessage { get; } = snsMessage;

    public HttpStatusCode StatusCode { get; } = statusCode;
}

/// <summary>One message of a PublishBatch: <see cref="EntryId"/> names it in the reply (unique within the batch).</summary>
public sealed record TopicEntry(string EntryId, string Message, IReadOnlyDictionary<string, string> Attributes);
