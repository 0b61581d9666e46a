using System.Text.Json.Serialization;
using Amazon.SQS.Model;

namespace Ion.Lambda;

/// <summary>The event Lambda's SQS event source hands the function: up to its batch size of received messages
/// (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html). Only what ion reads is declared.</summary>
public sealed class SqsEvent
{
    [JsonPropertyName("Records")]
    public List<SqsRecord> Records { get; set; } = [];
}

public sealed class SqsRecord
{
    public string MessageId { get; set; } = "";
    public string ReceiptHandle { get; set; } = "";
    public string Body { get; set; } = "";
    /// <summary>System attributes: <c>ApproximateReceiveCount</c>, <c>SentTimestamp</c>, ….</summary>
    public Dictionary<string, string> Attributes { get; set; } = [];
    public Dictionary<string, SqsRecordAttribute> MessageAttributes { get; set; } = [];
    [JsonPropertyName("eventSourceARN")]
    public string? EventSourceArn { get; set; }

    /// <summary>The record as the SQS SDK gives a received message, so the queue reads it as it reads its own.</summary>
    public Message ToMessage() => new()
    {
        MessageId = MessageId,
        ReceiptHandle = ReceiptHandle,
        Body = Body,
        Attributes = Attributes,
        MessageAttributes = MessageAttributes.ToDictionary(a => a.Key, a => new MessageAttributeValue { DataType = a.Value.DataType, StringValue = a.Value.StringValue }),
    };
}

public sealed class SqsRecordAttribute
{
    public string? StringValue { get; set; }
    public string DataType { get; set; } = "String";
}

/// <summary>The partial batch response (<c>ReportBatchItemFailures</c>): the records that must come back. Lambda
/// deletes the others.</summary>
public sealed class BatchResponse
{
    public List<BatchItemFailure> BatchItemFailures { get; set; } = [];
}

public sealed class BatchItemFailure
{
    public string ItemIdentifier { get; set; } = "";
}

/// <summary>Source-generated: NativeAOT has no reflection-based serialisation.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(SqsEvent))]
[JsonSerializable(typeof(BatchResponse))]
public sealed partial class LambdaJson : JsonSerializerContext;
