using System.Net.Http.Json;
using Ion.Log;
using Ion.Tests.Fixtures;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Ion.Tests.Delivery;

/// <summary>How <c>ion serve</c> stops on SIGTERM (a deploy, a scale-in, systemd): what is under way finishes within the
/// host's shutdown timeout, which covers a send's reply and, on AWS, SQS's long poll.</summary>
public sealed class StopTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ATermDuringASlowSend_WaitsForTheRelaysReply_RecordsTheMessageSent_AndItIsNotSentAgain()
    {
        // The relay takes five seconds to answer the end of the data, as a relay that filters content may.
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.Slow(ScriptedStage.EndOfData, TimeSpan.FromSeconds(5)));
        var data = Directory.CreateTempSubdirectory("ion-term-").FullName;
        string[] settings =
        [
            $"--Ion:DataDirectory={data}",
            "--Ion:Smtp:Host=127.0.0.1",
            $"--Ion:Smtp:Port={relay.Port}",
            "--Ion:Smtp:Security=None",
            "--Logging:LogLevel:Default=Warning",
        ];
        var port = Ports.Free();
        await using (var ion = await IonProcess.StartAsync(port, settings))
        {
            (await ion.Client.PostAsJsonAsync("/v1/messages",
                new { action = "send", id = "slow-1", recipient = "a@example.com", subject = "Slow", body_text = "x" }, Token)).EnsureSuccessStatusCode();
            await IonServer.WaitUntilAsync(() => Task.FromResult(relay.Transactions.Count > 0), "the relay has the message");
            await Task.Delay(TimeSpan.FromMilliseconds(500), Token);

            ion.Terminate();

            Assert.Equal(0, await ion.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        }
        Assert.Single(relay.Delivered);

        // Started again on the same file, ion finds the message sent: the stop recorded the relay's 250.
        await using (var ion = await IonProcess.StartAsync(port, settings))
        {
            var record = await ion.Client.GetFromJsonAsync<DeliveryRecord>("/v1/messages/slow-1", IonServer.Json, Token);
            Assert.Equal(MessageState.Sent, record!.State);
            await Task.Delay(TimeSpan.FromSeconds(2), Token);
        }
        Assert.Single(relay.Delivered);
    }

    [Theory]
    // .NET's 30 s would cut a slow relay's reply to the last send short: the SMTP command timeout, plus 10 s.
    [InlineData("Sqlite", null, null, 70)]
    [InlineData("Aws", null, null, 70)]
    // A short command timeout: on AWS the 20 s long poll, plus 10 s; never below .NET's 30 s.
    [InlineData("Aws", "00:00:05", null, 30)]
    [InlineData("Sqlite", "00:00:05", null, 30)]
    // The operator may raise it, never lower it below what a stop needs.
    [InlineData("Aws", null, "120", 120)]
    [InlineData("Aws", null, "5", 70)]
    public async Task TheShutdownTimeout_OutlastsASendsReply_AndTheLongPoll(string store, string? commandTimeout, string? shutdownTimeoutSeconds, int seconds)
    {
        List<string> args =
        [
            $"--Ion:Store={store}",
            $"--Ion:DataDirectory={Directory.CreateTempSubdirectory("ion-timeout-").FullName}",
            "--Ion:Aws:Region=us-east-1",
            "--Ion:Aws:QueueUrl=http://127.0.0.1:9/000000000000/mail",
            "--Ion:Aws:DeadLetterQueueUrl=http://127.0.0.1:9/000000000000/dead",
            "--Ion:Aws:TableName=log",
        ];
        if (commandTimeout is not null)
            args.Add($"--Ion:Smtp:CommandTimeout={commandTimeout}");
        if (shutdownTimeoutSeconds is not null)
            args.Add($"--shutdownTimeoutSeconds={shutdownTimeoutSeconds}");

        await using var app = IonApp.Build([.. args]);

        Assert.Equal(TimeSpan.FromSeconds(seconds), app.Services.GetRequiredService<IOptions<HostOptions>>().Value.ShutdownTimeout);
    }
}
