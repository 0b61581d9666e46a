using Ion.Tests.Fixtures;
using MimeKit;

namespace Ion.Tests.Stores.Aws;

/// <summary>Several <c>ion serve</c> processes on one SQS queue, as ion scales on AWS: they share the work, send each
/// message once, and lose nothing when one is killed.</summary>
public sealed class AwsWorkersTests(AwsEmulators aws) : IClassFixture<AwsEmulators>
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TwoWorkers_Deliver2000Messages_PublishedToTheTopic_EachOnce_AndBothTakeAShare()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync();
        var settings = Settings(aws.Settings(resources, throughTopic: false), sink.Port);
        await using var first = await IonProcess.StartAsync(Ports.Free(), [.. settings, "--Ion:DefaultSender=first@test.example"]);
        await using var second = await IonProcess.StartAsync(Ports.Free(), [.. settings, "--Ion:DefaultSender=second@test.example"]);

        var published = await PublishAsync(resources, 2000);

        var messages = await sink.WaitForMessagesAsync(2000, TimeSpan.FromMinutes(3));
        // Anything sent twice would arrive moments after the last first copy.
        await Task.Delay(TimeSpan.FromSeconds(2), Token);
        Assert.Equal(2000, sink.Count);
        Assert.Equal(published, messages.Select(m => m.Subject).Order(StringComparer.Ordinal));
        var bySender = messages.GroupBy(m => ((MailboxAddress)m.From[0]).Address).ToDictionary(g => g.Key, g => g.Count());
        Assert.True(bySender.GetValueOrDefault("first@test.example") > 100 && bySender.GetValueOrDefault("second@test.example") > 100,
            $"each worker should take a share: {string.Join(", ", bySender)}");
        Assert.Empty(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));
    }

    [Fact]
    public async Task AWorkerKilledMidRun_LosesNothing_AndSendsAtMostOneMessagePerConnectionTwice()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync();
        // What the killed worker held shows again on the queue after its visibility timeout.
        var settings = Settings(aws.Settings(resources, throughTopic: false), sink.Port, "--Ion:Delivery:VisibilityTimeout=00:00:03");
        await using var killed = await IonProcess.StartAsync(Ports.Free(), [.. settings, "--Ion:DefaultSender=killed@test.example"]);
        await using var survivor = await IonProcess.StartAsync(Ports.Free(), [.. settings, "--Ion:DefaultSender=survivor@test.example"]);

        var published = await PublishAsync(resources, 1000);
        await IonServer.WaitUntilAsync(() => Task.FromResult(sink.Count >= 200), "200 messages delivered", TimeSpan.FromMinutes(2));
        await killed.KillAsync();

        await IonServer.WaitUntilAsync(() => Task.FromResult(Subjects(sink).Distinct().Count() == 1000), "every message delivered",
            TimeSpan.FromMinutes(3));
        await Task.Delay(TimeSpan.FromSeconds(4), Token);
        var subjects = Subjects(sink);
        Assert.Equal(published, subjects.Distinct().Order(StringComparer.Ordinal));
        // A message the relay took just before the kill, whose outcome the log never got, goes again: one per connection.
        var twice = subjects.Count - 1000;
        Assert.True(twice <= Connections, $"{twice} message(s) sent twice; at most {Connections} expected");
        Assert.Empty(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));
    }

    private const int Connections = 4;

    private static string[] Settings(string[] store, int smtpPort, params string[] more) =>
    [
        .. store,
        $"--Ion:DataDirectory={Directory.CreateTempSubdirectory("ion-worker-").FullName}",
        "--Ion:Smtp:Host=127.0.0.1",
        $"--Ion:Smtp:Port={smtpPort}",
        "--Ion:Smtp:Security=None",
        $"--Ion:Delivery:Concurrency={Connections}",
        "--Logging:LogLevel:Default=Warning",
        .. more,
    ];

    /// <summary>Publishes <paramref name="count"/> messages with <c>ion publish --topic-arn</c>, as JSON lines; returns
    /// their subjects (each its id), in order.</summary>
    private async Task<List<string>> PublishAsync(Ion.Stores.Aws.AwsResources resources, int count)
    {
        var ids = Enumerable.Range(1, count).Select(i => $"w-{i:D5}").ToList();
        var lines = string.Join('\n', ids.Select(id =>
            $$"""{"action":"send","id":"{{id}}","recipient":"r{{id}}@example.com","subject":"{{id}}","body_text":"x"}"""));
        var data = Directory.CreateTempSubdirectory("ion-publish-").FullName;
        var result = await IonCli.RunAsync(data, ["publish", "-", "--topic-arn", resources.TopicArn, .. aws.Settings(resources, throughTopic: false)], lines);
        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Equal(ids, result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        return ids;
    }

    private static List<string> Subjects(SmtpSink sink) =>
        [.. sink.Files().Select(file =>
        {
            try
            {
                using var stream = File.OpenRead(file);
                return MimeMessage.Load(stream).Subject ?? "";
            }
            catch (Exception error) when (error is IOException or FormatException)
            {
                return "";  // still being written
            }
        }).Where(s => s.Length > 0)];
}
