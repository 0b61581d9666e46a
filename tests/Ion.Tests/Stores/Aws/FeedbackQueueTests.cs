using System.Diagnostics.Metrics;
using Ion.Stores.Aws;
using Ion.Suppression;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Ion.Tests.Stores.Aws;

/// <summary>How the Lambda tells the feedback queue's records from ion's messages: by the record's eventSourceARN
/// against <c>Ion:Aws:FeedbackQueueUrl</c>, with no call to SQS.</summary>
public sealed class FeedbackQueueTests : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();

    private FeedbackQueue Queue(string? url) => new(url, new Feedback(
        new Suppressions(null, Options.Create(new SuppressionOptions()), TimeProvider.System),
        new Ion.Events.DeliveryEvents(null, Options.Create(new Ion.Events.EventsOptions()), Options.Create(new Ion.Delivery.DeliveryOptions()), TimeProvider.System),
        new IonMetrics(_services.GetRequiredService<IMeterFactory>()), NullLogger<Feedback>.Instance));

    [Theory]
    [InlineData("https://sqs.eu-west-1.amazonaws.com/123456789012/ion-mail-feedback", "arn:aws:sqs:eu-west-1:123456789012:ion-mail-feedback")]
    [InlineData("https://eu-west-1.queue.amazonaws.com/123456789012/ion-mail-feedback", "arn:aws:sqs:eu-west-1:123456789012:ion-mail-feedback")]
    [InlineData("https://queue.amazonaws.com/123456789012/ion-mail-feedback/", "arn:aws:sqs:us-east-1:123456789012:ion-mail-feedback")]
    [InlineData("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/feedback", "arn:aws-cn:sqs:cn-north-1:123456789012:feedback")]
    [InlineData("http://sqs.us-east-1.localhost:4566/000000000000/t0123-feedback", "arn:aws:sqs:us-east-1:000000000000:t0123-feedback")]
    public void ARecordOfTheFeedbackQueue_IsKnownByItsAccountAndName_WhateverTheUrlsHost(string url, string arn) =>
        Assert.True(Queue(url).IsSourceOf(arn));

    [Theory]
    [InlineData("arn:aws:sqs:eu-west-1:123456789012:ion-mail")]          // the input queue
    [InlineData("arn:aws:sqs:eu-west-1:123456789012:ion-mail-feedback-2")]
    [InlineData("arn:aws:sqs:eu-west-1:123456789012:Ion-Mail-Feedback")]  // SQS's names are case-sensitive
    [InlineData("arn:aws:sqs:eu-west-1:210987654321:ion-mail-feedback")]  // another account's queue of that name
    [InlineData("arn:aws:sns:eu-west-1:123456789012:ion-mail-feedback")]
    [InlineData("arn:aws:sqs:eu-west-1:123456789012")]
    [InlineData("ion-mail-feedback")]
    [InlineData("")]
    [InlineData(null)]
    public void AnyOtherRecord_IsNot(string? arn) =>
        Assert.False(Queue("https://sqs.eu-west-1.amazonaws.com/123456789012/ion-mail-feedback").IsSourceOf(arn));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void WithoutAFeedbackQueue_NoRecordIsOne(string? url)
    {
        var queue = Queue(url);

        Assert.Null(queue.Url);
        Assert.False(queue.IsSourceOf("arn:aws:sqs:eu-west-1:123456789012:ion-mail-feedback"));
    }

    [Theory]
    [InlineData("https://sqs.eu-west-1.amazonaws.com/123456789012/ion-mail")]
    [InlineData("https://eu-west-1.queue.amazonaws.com/123456789012/ion-mail")]         // the input queue by another URL
    [InlineData("https://eu-west-1.queue.amazonaws.com/123456789012/ion-dead-letters")]
    public void AFeedbackQueueUrl_NamingTheInputOrDeadLetterQueue_IsRefused_HoweverWritten(string url)
    {
        // The Lambda would take that queue's every record for a notification.
        var result = new AwsOptionsValidator().Validate(null, Settings(url));

        Assert.True(result.Failed);
        Assert.Contains("Ion:Aws:FeedbackQueueUrl must be a queue of its own, not the input or dead-letter queue", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void AFeedbackQueueUrl_OfItsOwn_IsTaken() =>
        Assert.True(new AwsOptionsValidator().Validate(null, Settings("https://sqs.eu-west-1.amazonaws.com/123456789012/ion-mail-feedback")).Succeeded);

    private static AwsOptions Settings(string feedbackQueueUrl) => new()
    {
        Region = "eu-west-1",
        QueueUrl = "https://sqs.eu-west-1.amazonaws.com/123456789012/ion-mail",
        DeadLetterQueueUrl = "https://sqs.eu-west-1.amazonaws.com/123456789012/ion-dead-letters",
        TableName = "ion-log",
        FeedbackQueueUrl = feedbackQueueUrl,
    };

    public void Dispose() => _services.Dispose();
}
