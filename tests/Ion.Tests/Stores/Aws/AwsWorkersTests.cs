using System.Net.Http.Json;
using Ion.Log;
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

    [Fact]
    public async Task AMessageWhoseWorkerDiesEveryTime_EndsInTheDeadLetterQueue_AndIsListedAsAbandoned()
    {
        // The relay takes the data and never answers: each worker holds the message until it is killed.
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.Slow(ScriptedStage.EndOfData, TimeSpan.FromMinutes(5)));
        var resources = await aws.ProvisionAsync(maxReceiveCount: 2);
        var settings = Settings(aws.Settings(resources), relay.Port,
            "--Ion:Delivery:VisibilityTimeout=00:00:02", "--Ion:Aws:DeadLetterSweepInterval=00:00:03");
        await aws.Sns.PublishAsync(resources.TopicArn,
            """{"action":"send","id":"poison","recipient":"a@example.com","subject":"Poison","body_text":"x"}""", new Dictionary<string, string>(), Token);

        // Each worker takes it and dies sending it. A killed worker's long polls may take it once more after its death
        // (SQS hands a message to a receive whose client is gone, and it counts), so how many workers die before SQS
        // gives up varies: two at most with maxReceiveCount 2.
        List<IonProcess> workers = [];
        DeliveryRecord? record = null;
        try
        {
            var sends = 0;
            for (var worker = 1; worker <= 3 && record?.State != MessageState.Dead; worker++)
            {
                if (workers.Count > 0)
                    await workers[^1].KillAsync();
                var ion = await IonProcess.StartAsync(Ports.Free(), settings);
                workers.Add(ion);
                await IonServer.WaitUntilAsync(async () =>
                {
                    record = await StatusAsync(ion, "poison");
                    return relay.Count(ScriptedStage.Data) > sends || record?.State == MessageState.Dead;
                }, $"worker {worker} sends it, or the log says it is dead", TimeSpan.FromSeconds(30));
                sends = relay.Count(ScriptedStage.Data);
            }
            var survivor = workers[^1];
            await IonServer.WaitUntilAsync(async () => (record = await StatusAsync(survivor, "poison"))?.State == MessageState.Dead,
                "the log says poison is dead", TimeSpan.FromSeconds(30));

            Assert.Equal(FailureClass.Abandoned, record!.FailureClass);
            Assert.Contains("redrive policy (maxReceiveCount)", record.LastReason, StringComparison.Ordinal);
            var listed = Assert.Single((await survivor.Client.GetFromJsonAsync<List<DeadLetter>>("/v1/dead-letters", IonServer.Json, Token))!);
            Assert.Equal("poison", listed.Id);
            Assert.Equal(FailureClass.Abandoned, listed.FailureClass);
            // The sweep writes the log, then replaces the letter with a noted copy; while a sweep scans (every 3 s here)
            // it holds the letters it has seen.
            List<Amazon.SQS.Model.Message> letters = [];
            await IonServer.WaitUntilAsync(async () => (letters = await aws.PeekAllAsync(resources.DeadLetterQueueUrl)).Count > 0,
                "the noted letter is in the dead-letter queue");
            var letter = Assert.Single(letters);
            Assert.Equal("abandoned", letter.MessageAttributes["ion-failure-class"].StringValue);
            Assert.InRange(relay.Count(ScriptedStage.Data), 1, 2);
        }
        finally
        {
            foreach (var worker in workers)
                await worker.DisposeAsync();
        }
    }

    private static async Task<DeliveryRecord?> StatusAsync(IonProcess ion, string id)
    {
        using var response = await ion.Client.GetAsync($"/v1/messages/{id}", Token);
        return response.StatusCode == System.Net.HttpStatusCode.NotFound ? null
            : await response.EnsureSuccessStatusCode().Content.ReadFromJsonAsync<DeliveryRecord>(IonServer.Json, Token);
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
