using System.Net.Http.Json;
using System.Text.Json;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Delivery;

/// <summary>kill -9 in the middle of delivery loses nothing: what was in flight comes back after the visibility
/// timeout, and duplicates stay few (at most what the worker held at the moment of the kill).</summary>
public class CrashTests(ITestOutputHelper output)
{
    private const int Messages = 1000;
    private const int Concurrency = 2;
    private const int BatchSize = 10;

    [Fact]
    public async Task KillDashNine_MidRun_LosesNothing_AndDuplicatesAreBounded()
    {
        var token = TestContext.Current.CancellationToken;
        await using var sink = await SmtpSink.StartAsync();
        var data = Directory.CreateTempSubdirectory("ion-crash-").FullName;
        var port = Ports.Free();
        string[] settings =
        [
            $"--Ion:DataDirectory={data}",
            "--Ion:DefaultSender=ion@test.example",
            "--Ion:Smtp:Host=127.0.0.1",
            $"--Ion:Smtp:Port={sink.Port}",
            "--Ion:Smtp:Security=None",
            $"--Ion:Delivery:Concurrency={Concurrency}",
            $"--Ion:Delivery:BatchSize={BatchSize}",
            "--Ion:Delivery:VisibilityTimeout=00:00:02",
            "--Logging:LogLevel:Default=Warning",
        ];
        var ids = Enumerable.Range(0, Messages).Select(i => $"crash-{i:D4}").ToList();
        List<string> notAccepted = [];

        await using (var ion = await IonProcess.StartAsync(port, settings))
        {
            var killer = Task.Run(async () =>
            {
                while (sink.Count < Messages / 5)
                    await Task.Delay(5, token);
                await ion.KillAsync();
            }, token);
            // Eight concurrent clients; a publish that fails because ion died is not accepted, and the client
            // publishes it again later with the same id, as a real client would.
            await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = token }, async (id, ct) =>
            {
                try
                {
                    using var response = await ion.Client.PostAsJsonAsync("/v1/messages", Message(id), ct);
                    if (response.StatusCode != System.Net.HttpStatusCode.Accepted)
                        lock (notAccepted) notAccepted.Add(id);
                }
                catch (HttpRequestException)
                {
                    lock (notAccepted) notAccepted.Add(id);
                }
            });
            await killer;
        }
        // smtp-sink drops the dump of a message cut off mid-DATA, so the count may be a little under the trigger.
        var deliveredBeforeKill = sink.Count;
        Assert.InRange(deliveredBeforeKill, Messages / 10, Messages - 1);

        await using (var ion = await IonProcess.StartAsync(port, settings))
        {
            foreach (var id in notAccepted)
                (await ion.Client.PostAsJsonAsync("/v1/messages", Message(id), token)).EnsureSuccessStatusCode();

            var received = await WaitForUniqueAsync(sink, Messages, TimeSpan.FromSeconds(60));
            var unique = received.Select(m => m.MessageId).Distinct().Count();
            var duplicates = received.Count - unique;
            output.WriteLine($"delivered before kill: {deliveredBeforeKill}; republished after kill: {notAccepted.Count}; received: {received.Count}; unique: {unique}; duplicates: {duplicates}");

            Assert.Equal(Messages, unique);
            Assert.Equal(ids.Select(id => Ion.Messages.MessageIds.MessageIdHeader(id, "test.example")).Order(), received.Select(m => m.MessageId).Distinct().Order());
            Assert.InRange(duplicates, 0, Concurrency * BatchSize);
            foreach (var id in ids.Where((_, i) => i % 50 == 0))
            {
                var status = await ion.Client.GetFromJsonAsync<JsonElement>($"/v1/messages/{id}", token);
                Assert.Equal("sent", status.GetProperty("state").GetString());
            }
        }
        Directory.Delete(data, recursive: true);
    }

    private static object Message(string id) =>
        new { action = "send", id, recipient = "crash@example.com", subject = $"crash test {id}", body_text = "x" };

    private static async Task<IReadOnlyList<MimeKit.MimeMessage>> WaitForUniqueAsync(SmtpSink sink, int count, TimeSpan timeout)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            if (sink.Count >= count)
            {
                var messages = await sink.ReadMessagesAsync();
                if (messages.Select(m => m.MessageId).Distinct().Count() >= count || Environment.TickCount64 > deadline)
                    return messages;
            }
            else if (Environment.TickCount64 > deadline)
            {
                return await sink.ReadMessagesAsync();
            }
            await Task.Delay(200);
        }
    }
}
