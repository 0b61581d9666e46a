using System.Net.Http.Json;
using System.Security.Cryptography;
using Amazon.S3.Model;
using Ion.Log;
using Ion.Stores.Aws;
using Ion.Tests.Fixtures;
using MimeKit;

namespace Ion.Tests.Stores.Aws;

/// <summary>Messages over SNS's 256 KB on the AWS store (<c>Ion:Aws:PayloadBucket</c>): kept in fauxqs's S3 with a
/// pointer on the topic and queue, as AWS's extended clients do, read by the worker, deleted once sent, kept while dead;
/// end to end through the topic, the queue, dynalite and a real SMTP server.</summary>
public sealed class S3PayloadTests(AwsEmulators aws) : IClassFixture<AwsEmulators>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    // 3 MB, as an invoice or a report: random, so that nothing can compress or fake it.
    private static readonly byte[] Pdf = RandomNumberGenerator.GetBytes(3 * 1024 * 1024);

    private static object Large(string id, string recipient = "a@example.com") => new
    {
        action = "send",
        id,
        recipient,
        subject = "Your invoice",
        body_text = "attached",
        attachments = new[] { new { filename = "invoice.pdf", content_type = "application/pdf", content_base64 = Convert.ToBase64String(Pdf) } },
    };

    private static byte[] AttachmentOf(MimeMessage message)
    {
        var part = Assert.Single(message.Attachments.OfType<MimePart>());
        Assert.Equal("invoice.pdf", part.FileName);
        using var bytes = new MemoryStream();
        part.Content!.DecodeTo(bytes);
        return bytes.ToArray();
    }

    [Fact]
    public async Task AThreeMegabyteAttachment_GoesThroughTheTopicAsAPointer_IsDeliveredWhole_AndItsPayloadIsDeletedOnceSent()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync(payloads: true);
        var observer = await aws.ObserveAsync(resources.TopicArn);
        await using var ion = await IonServer.StartAsync(sink.Port, aws.Settings(resources));

        await ion.PublishAsync(Large("invoice-1"));

        var sent = await ion.WaitForStatusAsync("invoice-1", r => r.State == MessageState.Sent, Wait);
        Assert.Equal(250, Assert.Single(sent.Attempts).SmtpCode);
        Assert.Equal(Pdf, AttachmentOf(Assert.Single(await sink.WaitForMessagesAsync(1, Wait))));
        // What went through SNS and SQS is the extended clients' pointer, marked with the payload's size.
        var seen = Assert.Single(await aws.PeekAllAsync(observer));
        Assert.True(S3Payloads.TryRead(seen.Body, out var bucket, out _), seen.Body);
        Assert.Equal(resources.PayloadBucket, bucket);
        Assert.True(int.Parse(seen.MessageAttributes[S3Payloads.SizeAttribute].StringValue, System.Globalization.CultureInfo.InvariantCulture) > 4_000_000);
        Assert.Equal("invoice-1", seen.MessageAttributes["ion-id"].StringValue);
        await IonServer.WaitUntilAsync(async () => (await aws.KeysAsync(resources.PayloadBucket!)).Count == 0, "the payload is deleted");
    }

    [Fact]
    public async Task AMessageAnApplicationOffloadedWithAnExtendedClient_IsDelivered_KnownByTheIdInItsJson()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync(payloads: true);
        await using var ion = await IonServer.StartAsync(sink.Port, aws.Settings(resources));

        // As the SNS extended client does it: the payload to S3 under a key of its own, the pointer to the topic, no ion-id.
        var body = System.Text.Json.JsonSerializer.Serialize(Large("from-the-app"));
        await aws.S3.PutObjectAsync(new PutObjectRequest { BucketName = resources.PayloadBucket, Key = "app/0001", ContentBody = body }, Token);
        await aws.Sns.PublishAsync(resources.TopicArn, S3Payloads.ReferenceTo(resources.PayloadBucket!, "app/0001"),
            new Dictionary<string, string> { [S3Payloads.SizeAttribute] = $"{body.Length}" }, Token);

        await ion.WaitForStatusAsync("from-the-app", r => r.State == MessageState.Sent, Wait);
        Assert.Equal(Pdf, AttachmentOf(Assert.Single(await sink.WaitForMessagesAsync(1, Wait))));
        await IonServer.WaitUntilAsync(async () => (await aws.KeysAsync(resources.PayloadBucket!)).Count == 0, "the payload is deleted");
    }

    [Fact]
    public async Task APayloadGoneFromS3_IsADeadLetterSayingSo_AndTheMessagesBehindItAreDelivered()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync(payloads: true);
        await using var ion = await IonServer.StartAsync(sink.Port, aws.Settings(resources));

        var pointer = S3Payloads.ReferenceTo(resources.PayloadBucket!, "expired-long-ago");
        await aws.Sns.PublishAsync(resources.TopicArn, pointer, new Dictionary<string, string> { ["ion-id"] = "gone-1" }, Token);
        var behind = await ion.PublishAsync(new { action = "send", recipient = "b@example.com", subject = "Behind it", body_text = "x" });

        var dead = await ion.WaitForStatusAsync("gone-1", r => r.State == MessageState.Dead, Wait);
        Assert.Equal(FailureClass.Invalid, dead.FailureClass);
        Assert.Contains($"its payload s3://{resources.PayloadBucket}/expired-long-ago is not in S3", dead.LastReason, StringComparison.Ordinal);
        await ion.WaitForStatusAsync(behind, r => r.State == MessageState.Sent, Wait);
        Assert.Equal("Behind it", Assert.Single(await sink.WaitForMessagesAsync(1, Wait)).Subject);
        // The letter keeps the pointer, which says where the payload was.
        await IonServer.WaitUntilAsync(async () => (await aws.PeekAllAsync(resources.DeadLetterQueueUrl)) is [var letter] && letter.Body == pointer,
            "the dead letter keeps the pointer");
        var listed = Assert.Single((await ion.Client.GetFromJsonAsync<List<DeadLetter>>("/v1/dead-letters", IonServer.Json, Token))!);
        Assert.Equal(pointer, listed.Body);
    }

    [Fact]
    public async Task ALargeDeadLetter_KeepsItsPayload_IsListedWhole_AndARedriveSendsIt_ThenThePayloadIsGone()
    {
        await using var sink = await SmtpSink.StartAsync("-B", "550 5.1.1 No such user", "-f", "RCPT");
        var resources = await aws.ProvisionAsync(payloads: true);
        await using var ion = await IonServer.StartAsync(sink.Port, [.. aws.Settings(resources), "--Ion:Suppression:Enabled=false"]);

        await ion.PublishAsync(Large("invoice-dead", "nobody@example.com"));
        await ion.WaitForStatusAsync("invoice-dead", r => r.State == MessageState.Dead, Wait);

        // The letter in SQS and the record in DynamoDB (400 KB an item) keep the pointer; the payload stays in S3.
        await IonServer.WaitUntilAsync(async () => (await aws.PeekAllAsync(resources.DeadLetterQueueUrl)) is [var letter] && S3Payloads.TryRead(letter.Body, out _, out _),
            "the dead letter is the pointer");
        Assert.Single(await aws.KeysAsync(resources.PayloadBucket!));
        var listed = Assert.Single((await ion.Client.GetFromJsonAsync<List<DeadLetter>>("/v1/dead-letters", IonServer.Json, Token))!);
        Assert.Equal("invoice-dead", listed.Id);
        using (var listedBody = System.Text.Json.JsonDocument.Parse(listed.Body))
            Assert.Equal(Convert.ToBase64String(Pdf), listedBody.RootElement.GetProperty("attachments")[0].GetProperty("content_base64").GetString());

        await sink.RestartAsync();
        using var redrive = await ion.Client.PostAsJsonAsync("/v1/dead-letters/redrive", new { ids = new[] { "invoice-dead" } }, Token);
        redrive.EnsureSuccessStatusCode();

        await ion.WaitForStatusAsync("invoice-dead", r => r.State == MessageState.Sent, Wait);
        Assert.Equal(Pdf, AttachmentOf(Assert.Single(await sink.WaitForMessagesAsync(1, Wait))));
        await IonServer.WaitUntilAsync(async () => (await aws.KeysAsync(resources.PayloadBucket!)).Count == 0, "the payload is deleted once sent");
    }

    [Fact]
    public async Task Serve_WithAPayloadBucketThatDoesNotExist_FailsAtStart_NamingTheSetting()
    {
        var resources = await aws.ProvisionAsync();
        var data = Directory.CreateTempSubdirectory("ion-aws-").FullName;

        var serve = await IonCli.RunAsync(data, ["serve", "--urls=http://127.0.0.1:0", .. aws.Settings(resources),
            "--Ion:Smtp:Host=127.0.0.1", "--Ion:Smtp:Port=2525", "--Ion:Smtp:Security=None", "--Ion:Aws:PayloadBucket=no-such-bucket"]);

        Assert.Equal(2, serve.ExitCode);
        var line = Assert.Single(serve.Error.Trim().Split('\n'));
        Assert.Contains("Ion:Aws:PayloadBucket: the S3 bucket 'no-such-bucket' does not exist", line, StringComparison.Ordinal);
    }
}
