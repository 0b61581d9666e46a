using System.Net.Http.Json;
using System.Text.Json;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Delivery;

/// <summary>kill -9 in the middle of delivery loses nothing: what the dead process held is sent within seconds of the
/// restart, not after the visibility timeout, and at most the message in the middle of its SMTP transaction on each
/// connection is sent twice (issue 7, items 1 and 10). Several processes on one file stay safe.</summary>
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
            // At most the message each connection was in the middle of; never a whole batch.
            Assert.InRange(duplicates, 0, Concurrency);
            foreach (var id in ids.Where((_, i) => i % 50 == 0))
            {
                var status = await ion.Client.GetFromJsonAsync<JsonElement>($"/v1/messages/{id}", token);
                Assert.Equal("sent", status.GetProperty("state").GetString());
            }
        }
        Directory.Delete(data, recursive: true);
    }

    [Fact]
    public async Task KillDashNine_WhatTheDeadProcessHeld_IsSentWithinSecondsOfTheRestart_NotAfterTheVisibilityTimeout()
    {
        var token = TestContext.Current.CancellationToken;
        // Each message takes 0.2 s at the relay, so at the kill both connections hold most of a batch.
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.Slow(ScriptedStage.EndOfData, TimeSpan.FromMilliseconds(200)));
        var data = Directory.CreateTempSubdirectory("ion-restart-").FullName;
        var port = Ports.Free();
        // The visibility timeout is ion's default, five minutes: the test would time out if it were waited for.
        string[] settings =
        [
            $"--Ion:DataDirectory={data}",
            "--Ion:DefaultSender=ion@test.example",
            "--Ion:Smtp:Host=127.0.0.1",
            $"--Ion:Smtp:Port={relay.Port}",
            "--Ion:Smtp:Security=None",
            $"--Ion:Delivery:Concurrency={Concurrency}",
            $"--Ion:Delivery:BatchSize={BatchSize}",
            "--Logging:LogLevel:Default=Warning",
        ];
        const int total = 30;
        var ids = Enumerable.Range(0, total).Select(i => $"restart-{i:D2}").ToList();

        await using (var ion = await IonProcess.StartAsync(port, settings))
        {
            foreach (var id in ids)
                (await ion.Client.PostAsJsonAsync("/v1/messages", Message(id), token)).EnsureSuccessStatusCode();
            await relay.WaitForDeliveredAsync(4, TimeSpan.FromSeconds(30));
            await ion.KillAsync();
        }
        var beforeRestart = relay.Delivered.Count;

        var restart = System.Diagnostics.Stopwatch.StartNew();
        await using (var ion = await IonProcess.StartAsync(port, settings))
        {
            await relay.WaitUntilAsync(() => relay.Delivered.Select(t => t.ParseMessage().MessageId).Distinct().Count() == total,
                TimeSpan.FromSeconds(60), "every message delivered after the restart");
            var took = restart.Elapsed;
            await Task.Delay(1000, token);
            var received = relay.Delivered.Select(t => t.ParseMessage().MessageId).ToList();
            output.WriteLine($"delivered before the kill: {beforeRestart}; all {total} delivered {took.TotalSeconds:F1} s after the restart; deliveries: {received.Count}");

            Assert.True(took < TimeSpan.FromSeconds(30), $"took {took} after the restart");
            Assert.InRange(received.Count - total, 0, Concurrency);
        }
        Directory.Delete(data, recursive: true);
    }

    [Fact]
    public async Task TwoServeProcesses_AndThePublishCommand_OnOneFile_SendEachMessageOnce()
    {
        var token = TestContext.Current.CancellationToken;
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.Slow(ScriptedStage.EndOfData, TimeSpan.FromMilliseconds(10)));
        var data = Directory.CreateTempSubdirectory("ion-two-").FullName;
        // A short visibility timeout, so that a hold that was not kept would show as a duplicate.
        string[] Settings() =>
        [
            $"--Ion:DataDirectory={data}",
            "--Ion:DefaultSender=ion@test.example",
            "--Ion:Smtp:Host=127.0.0.1",
            $"--Ion:Smtp:Port={relay.Port}",
            "--Ion:Smtp:Security=None",
            "--Ion:Delivery:Concurrency=2",
            "--Ion:Delivery:VisibilityTimeout=00:00:02",
            "--Ion:Delivery:PollInterval=00:00:00.100",
            "--Logging:LogLevel:Default=Warning",
        ];
        await using var first = await IonProcess.StartAsync(Ports.Free(), Settings());
        await using var second = await IonProcess.StartAsync(Ports.Free(), Settings());
        var lines = string.Join('\n', Enumerable.Range(0, 100).Select(i => JsonSerializer.Serialize(Message($"cli-{i:D3}"))));

        var publishing = new[]
        {
            Task.Run(async () =>
            {
                for (var i = 0; i < 100; i++)
                    (await first.Client.PostAsJsonAsync("/v1/messages", Message($"first-{i:D3}"), token)).EnsureSuccessStatusCode();
            }, token),
            Task.Run(async () =>
            {
                for (var i = 0; i < 100; i++)
                    (await second.Client.PostAsJsonAsync("/v1/messages", Message($"second-{i:D3}"), token)).EnsureSuccessStatusCode();
            }, token),
            Task.Run(async () => Assert.Equal(0, (await IonCli.RunAsync(data, ["publish", "-"], lines)).ExitCode), token),
        };
        await Task.WhenAll(publishing);

        await relay.WaitForDeliveredAsync(300, TimeSpan.FromSeconds(60));
        await Task.Delay(3000, token);
        var ids = relay.Delivered.Select(t => t.ParseMessage().Subject).ToList();
        output.WriteLine($"deliveries: {ids.Count}, distinct: {ids.Distinct().Count()}");
        Assert.Equal(300, ids.Distinct().Count());
        Assert.Equal(300, ids.Count);
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
