using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Net.Sockets;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Cli;

/// <summary><c>./run.sh --aws</c> itself, the real script in the repository: it builds ion, starts the emulators on the
/// ports it is given, provisions them, and runs ion on the AWS store; a message posted to it reaches a real SMTP sink
/// through the topic and the queue; TERM stops ion and both emulators.</summary>
public sealed class RunScriptAwsTests
{
    [Fact]
    public async Task RunShAws_DeliversThroughTheEmulators_AndTermStopsEverything()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromMinutes(3));
        await using var sink = await SmtpSink.StartAsync();
        var (sqsPort, dynamoPort, ionPort) = (Ports.Free(), Ports.Free(), Ports.Free());
        var root = Repository.Root;
        var info = new ProcessStartInfo("bash", [Path.Combine(root, "run.sh"), "--aws"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = root,
        };
        info.Environment["SQS_PORT"] = sqsPort.ToString(CultureInfo.InvariantCulture);
        info.Environment["DYNAMODB_PORT"] = dynamoPort.ToString(CultureInfo.InvariantCulture);
        info.Environment["ION_URL"] = $"http://127.0.0.1:{ionPort}";
        // A relay is configured: no try-out inbox.
        info.Environment["Ion__Smtp__Host"] = "127.0.0.1";
        info.Environment["Ion__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture);
        info.Environment["Ion__Smtp__Security"] = "None";
        using var script = Process.Start(info) ?? throw new InvalidOperationException("could not start run.sh");
        var said = new ConcurrentQueue<string>();
        var listening = new TaskCompletionSource();
        script.ErrorDataReceived += (_, line) =>
        {
            if (line.Data is not { } text)
                return;
            said.Enqueue(text);
            if (text.StartsWith("run.sh: ion is listening", StringComparison.Ordinal))
                listening.TrySetResult();
        };
        script.OutputDataReceived += (_, line) => { if (line.Data is { } text) said.Enqueue(text); };
        script.BeginErrorReadLine();
        script.BeginOutputReadLine();
        script.StandardInput.Close();
        try
        {
            await listening.Task.WaitAsync(timeout.Token);
            Assert.Contains(said, line => line.Contains("AWS store on the emulators", StringComparison.Ordinal));
            Assert.Contains(said, line => line.Contains("export Ion__Aws__TopicArn=", StringComparison.Ordinal));

            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ionPort}") };
            using var published = await client.PostAsJsonAsync("/v1/messages",
                new { action = "send", recipient = "a@example.com", subject = "Through run.sh --aws", body_text = "x" }, timeout.Token);
            published.EnsureSuccessStatusCode();
            Assert.Equal("Through run.sh --aws", Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30))).Subject);

            Process.Start("kill", ["-TERM", script.Id.ToString(CultureInfo.InvariantCulture)]).WaitForExit();
            await script.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            script.Kill(entireProcessTree: true);
            Assert.Fail($"run.sh --aws did not deliver, or did not stop, in 3 minutes; it said:\n{string.Join('\n', said)}");
        }

        foreach (var port in new[] { sqsPort, dynamoPort, ionPort })
            await IonServer.WaitUntilAsync(() => Task.FromResult(!Listening(port)), $"nothing listening on {port} after TERM");
    }

    private static bool Listening(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect("127.0.0.1", port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
