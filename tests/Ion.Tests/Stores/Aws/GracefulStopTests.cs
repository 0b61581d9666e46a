using System.Collections.Concurrent;
using System.Diagnostics;
using Ion.Stores.Aws;
using Ion.Tests.Fixtures;
using MimeKit;

namespace Ion.Tests.Stores.Aws;

/// <summary><c>ion serve</c> on SQS stopped with SIGTERM, as a rolling deploy or a scale-in stops it: the stop hides no
/// message for longer than a moment. SQS (and fauxqs) go on with a long poll whose client has gone, and hand it the
/// next message, which then stays hidden for the whole visibility timeout (aws/aws-sdk-net#1680,
/// aws/aws-sdk-go-v2#2068); so ion lets the polls in flight finish and hands back at once what they bring.</summary>
public sealed class GracefulStopTests(AwsEmulators aws) : IClassFixture<AwsEmulators>
{
    private const int Connections = 4;

    // SQS's longest long poll, which ion uses, and a margin for the hand-back and the host's own stop.
    private static readonly TimeSpan LongestStop = TimeSpan.FromSeconds(20) + TimeSpan.FromSeconds(10);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AWorkerStoppedWithTerm_HidesNothing_AMessagePublishedThenIsDeliveredByTheNextWorkerWithinTenSeconds()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync();
        // ion's default visibility timeout (5 minutes): a hidden message would miss the 10 s by far.
        var settings = Settings(aws.Settings(resources), sink.Port);
        await using var stopped = await IonProcess.StartAsync(Ports.Free(), [.. settings, "--Ion:DefaultSender=stopped@test.example"]);
        // Its slots are in their long polls by now.
        await Task.Delay(TimeSpan.FromSeconds(2), Token);

        var stopping = Stopwatch.StartNew();
        stopped.Terminate();
        await aws.Sns.PublishAsync(resources.TopicArn,
            """{"action":"send","id":"after-term","recipient":"a@example.com","subject":"after-term","body_text":"x"}""",
            new Dictionary<string, string>(), Token);
        var published = Stopwatch.StartNew();
        await using var next = await IonProcess.StartAsync(Ports.Free(), [.. settings, "--Ion:DefaultSender=next@test.example"]);

        var message = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10) - published.Elapsed));
        Assert.Equal("after-term", message.Subject);
        // The stopping worker received it, perhaps, but gave it back untried.
        Assert.Equal("next@test.example", ((MailboxAddress)message.From[0]).Address);
        Assert.Equal(0, await stopped.WaitForExitAsync(LongestStop - stopping.Elapsed));
        TestContext.Current.TestOutputHelper?.WriteLine($"delivered {published.Elapsed.TotalSeconds:F1} s after the publish; the stop took {stopping.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task ARollingRestartOfTwoWorkers_During1000Messages_DeliversEachOnce_NoneLaterThan30SecondsAfterItsPublish()
    {
        await using var sink = await SmtpSink.StartAsync();
        var resources = await aws.ProvisionAsync();
        var settings = Settings(aws.Settings(resources), sink.Port);
        List<IonProcess> workers = [];
        try
        {
            workers.Add(await IonProcess.StartAsync(Ports.Free(), [.. settings, "--Ion:DefaultSender=a1@test.example"]));
            workers.Add(await IonProcess.StartAsync(Ports.Free(), [.. settings, "--Ion:DefaultSender=a2@test.example"]));

            // Ten messages every 400 ms: 1,000 over some 40 s, while each worker in turn is stopped and replaced.
            ConcurrentDictionary<string, DateTimeOffset> publishedAt = new(StringComparer.Ordinal);
            var publishing = Task.Run(async () =>
            {
                for (var batch = 0; batch < 100; batch++)
                {
                    var ids = Enumerable.Range(batch * 10, 10).Select(i => $"r-{i:D4}").ToList();
                    var entries = ids.Select((id, i) => new TopicEntry($"{i}",
                        $$"""{"action":"send","id":"{{id}}","recipient":"{{id}}@example.com","subject":"{{id}}","body_text":"x"}""",
                        new Dictionary<string, string>())).ToList();
                    var at = TimeProvider.System.GetUtcNow();
                    Assert.Empty(await aws.Sns.PublishBatchAsync(resources.TopicArn, entries, Token));
                    foreach (var id in ids)
                        publishedAt[id] = at;
                    await Task.Delay(TimeSpan.FromMilliseconds(400), Token);
                }
            }, Token);

            foreach (var (old, replacement) in new[] { (0, "b1"), (1, "b2") })
            {
                await Task.Delay(TimeSpan.FromSeconds(5), Token);
                var stopping = Stopwatch.StartNew();
                workers[old].Terminate();
                workers.Add(await IonProcess.StartAsync(Ports.Free(), [.. settings, $"--Ion:DefaultSender={replacement}@test.example"]));
                Assert.Equal(0, await workers[old].WaitForExitAsync(LongestStop - stopping.Elapsed));
                TestContext.Current.TestOutputHelper?.WriteLine($"worker {old + 1} stopped in {stopping.Elapsed.TotalSeconds:F1} s");
            }
            await publishing;

            var deadline = TimeProvider.System.GetUtcNow() + TimeSpan.FromSeconds(40);
            Dictionary<string, List<DateTimeOffset>> delivered = [];
            while ((delivered = Delivered(sink)).Count < 1000 && TimeProvider.System.GetUtcNow() < deadline)
                await Task.Delay(TimeSpan.FromMilliseconds(200), Token);
            // Anything sent twice would arrive moments after the last first copy.
            await Task.Delay(TimeSpan.FromSeconds(3), Token);
            delivered = Delivered(sink);

            var missing = publishedAt.Keys.Except(delivered.Keys).Order(StringComparer.Ordinal).ToList();
            Assert.True(missing.Count == 0, $"{missing.Count} message(s) not delivered 40 s after the last publish: {string.Join(", ", missing.Take(20))}");
            var twice = delivered.Where(d => d.Value.Count > 1).Select(d => d.Key).ToList();
            Assert.True(twice.Count == 0, $"sent more than once: {string.Join(", ", twice)}");
            var late = delivered.Select(d => (Id: d.Key, Took: d.Value[0] - publishedAt[d.Key])).Where(d => d.Took > TimeSpan.FromSeconds(30)).ToList();
            Assert.True(late.Count == 0, $"delivered later than 30 s after the publish: {string.Join(", ", late.Select(l => $"{l.Id} ({l.Took.TotalSeconds:F0} s)"))}");
            Assert.Equal(1000, delivered.Count);
            var slowest = delivered.Max(d => d.Value[0] - publishedAt[d.Key]);
            TestContext.Current.TestOutputHelper?.WriteLine($"all 1000 delivered once; the slowest {slowest.TotalSeconds:F1} s after its publish");
            Assert.Empty(await aws.PeekAllAsync(resources.DeadLetterQueueUrl));
        }
        finally
        {
            foreach (var worker in workers)
                await worker.DisposeAsync();
        }
    }

    /// <summary>Each message the sink has, by subject (its id), with when each copy arrived (the dump's last write).</summary>
    private static Dictionary<string, List<DateTimeOffset>> Delivered(SmtpSink sink)
    {
        Dictionary<string, List<DateTimeOffset>> delivered = new(StringComparer.Ordinal);
        foreach (var file in sink.Files())
        {
            string subject;
            try
            {
                using var stream = File.OpenRead(file);
                subject = MimeMessage.Load(stream).Subject ?? "";
            }
            catch (Exception error) when (error is IOException or FormatException)
            {
                continue;  // still being written
            }
            if (subject.Length == 0)
                continue;
            if (!delivered.TryGetValue(subject, out var copies))
                delivered[subject] = copies = [];
            copies.Add(new DateTimeOffset(File.GetLastWriteTimeUtc(file), TimeSpan.Zero));
        }
        foreach (var copies in delivered.Values)
            copies.Sort();
        return delivered;
    }

    private static string[] Settings(string[] store, int smtpPort) =>
    [
        .. store,
        $"--Ion:DataDirectory={Directory.CreateTempSubdirectory("ion-stop-").FullName}",
        "--Ion:Smtp:Host=127.0.0.1",
        $"--Ion:Smtp:Port={smtpPort}",
        "--Ion:Smtp:Security=None",
        $"--Ion:Delivery:Concurrency={Connections}",
        "--Logging:LogLevel:Default=Warning",
    ];
}
