using Ion.Log;
using Ion.Queues;
using Ion.Stores.Sqlite;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Cli;

/// <summary>The ion command line, each command run as a real process on a temp data folder.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("ion-cli-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task Send_QueuesTheMessage_PrintsItsId_AndStatusShowsIt()
    {
        var sent = await IonCli.RunAsync(_data, ["send", "--to", "a@example.com", "--subject", "Hi", "--text", "hello", "--id", "cli-1"]);

        Assert.Equal(0, sent.ExitCode);
        Assert.Equal("cli-1", sent.Out.Trim());
        var status = await IonCli.RunAsync(_data, ["status", "cli-1"]);
        Assert.Equal(0, status.ExitCode);
        Assert.StartsWith("cli-1: queued", status.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Publish_OfAScheduledMessage_StatusShowsItScheduled_WithItsTime()
    {
        var sendAt = TimeProvider.System.GetUtcNow().AddDays(2);
        var published = await IonCli.RunAsync(_data, ["publish", "-"], $$"""
            {"action":"send","id":"cli-later","recipient":"a@example.com","subject":"Hi","body_text":"x","send_at":"{{sendAt:yyyy-MM-dd'T'HH:mm:ss'Z'}}"}
            """);
        Assert.Equal(0, published.ExitCode);

        var status = await IonCli.RunAsync(_data, ["status", "cli-later"]);

        Assert.Equal(0, status.ExitCode);
        Assert.StartsWith("cli-later: scheduled", status.Out, StringComparison.Ordinal);
        Assert.Contains($"  send at: {sendAt:yyyy-MM-dd HH:mm:ss}Z", status.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Send_WithABadAddress_Exits2_WithOneLineNamingTheField()
    {
        var result = await IonCli.RunAsync(_data, ["send", "--to", "not-an-address", "--subject", "Hi", "--text", "x"]);

        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.Error.Trim().Split('\n'));
        Assert.StartsWith("ion: invalid: to", line, StringComparison.Ordinal);
        Assert.Equal("", result.Out);
    }

    [Fact]
    public async Task Publish_JsonLines_QueuesEveryMessage()
    {
        var file = Path.Combine(_data, "messages.jsonl");
        await File.WriteAllLinesAsync(file,
        [
            """{ "action": "send", "recipient": "a@example.com", "subject": "Hi", "body_text": "plain part", "body_html": "<p>html part</p>" }""",
            "",
            """{"action":"send","id":"line-3","to":["b@example.com","c@example.com"],"subject":"Two","body_html":"<p>x</p>"}""",
            """{ "action": "redrive" }""",
        ], TestContext.Current.CancellationToken);

        var result = await IonCli.RunAsync(_data, ["publish", file]);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(3, result.Out.Trim().Split('\n').Length);
        Assert.Contains("line-3", result.Out, StringComparison.Ordinal);
        Assert.Equal(3, (await CountsAsync()).Ready);
    }

    [Fact]
    public async Task Publish_OneDocumentFromStdin_IsQueued()
    {
        var result = await IonCli.RunAsync(_data, ["publish", "-"], """
            {
              "action": "send", "recipient": "a@example.com",
              "subject": "Hi", "body_text": "spread over lines"
            }
            """);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(1, (await CountsAsync()).Ready);
    }

    [Fact]
    public async Task Publish_WithOneBadLine_QueuesNothing_AndSaysWhichLine()
    {
        var file = Path.Combine(_data, "mixed.jsonl");
        await File.WriteAllLinesAsync(file,
        [
            """{"action":"send","recipient":"a@example.com","subject":"Hi","body_text":"x"}""",
            """{"action":"send","recipient":"a@example.com","subject":"Hi","bodytext":"typo"}""",
        ], TestContext.Current.CancellationToken);

        var result = await IonCli.RunAsync(_data, ["publish", file]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("line 2: invalid:", result.Error, StringComparison.Ordinal);
        Assert.Contains("nothing was queued", result.Error, StringComparison.Ordinal);
        Assert.Equal(0, (await CountsAsync()).Ready);
    }

    [Fact]
    public async Task Publish_OverMaxMessageBytes_QueuesNothing_NamingTheLimit()
    {
        var file = Path.Combine(_data, "big.jsonl");
        var big = System.Text.Json.JsonSerializer.Serialize(new { action = "send", recipient = "a@example.com", subject = "big", body_text = new string('x', 3000) });
        await File.WriteAllLinesAsync(file, ["""{"action":"send","recipient":"a@example.com","subject":"small","body_text":"x"}""", big], TestContext.Current.CancellationToken);

        var result = await IonCli.RunAsync(_data, ["publish", file, "--Ion:MaxMessageBytes=2048"]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("line 2: invalid: the message is larger than Ion:MaxMessageBytes (2048 bytes)", result.Error, StringComparison.Ordinal);
        Assert.Equal(0, (await CountsAsync()).Ready);
    }

    [Fact]
    public async Task Status_OfAnUnknownId_Exits1()
    {
        var result = await IonCli.RunAsync(_data, ["status", "nope"]);

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("ion: no message with id 'nope'", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeadLetters_AreListed_AndRedrivenById()
    {
        // Dead-lettered as the worker does it: the log records why, the queue moves the message.
        using (var database = new SqliteDatabase(Path.Combine(_data, "ion.db")))
        {
            var token = TestContext.Current.CancellationToken;
            var queue = new SqliteQueue(database, new SqliteQueueOptions(), TimeProvider.System);
            var log = new SqliteDeliveryLog(database, TimeProvider.System);
            await queue.EnqueueAsync([new("dead-1", "{\"action\":\"send\"}"), new("dead-2", "{}")], token);
            foreach (var message in await queue.ReceiveAsync(10, token))
            {
                var reason = $"rejected: 550 5.1.1 No such user ({message.Id})";
                await log.RecordAsync([new DeliveryEntry(message.Id, message.QueueMessageId, MessageState.Dead, null, [], 1, reason, FailureClass.Permanent, message.Body)], token);
                await queue.DeadLetterAsync(message, new DeadLetterNote(reason, FailureClass.Permanent, 1, 550), token);
            }
            queue.Dispose();
        }

        var list = await IonCli.RunAsync(_data, ["dead-letters", "list"]);
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("dead-1", list.Out, StringComparison.Ordinal);
        Assert.Contains("550 5.1.1 No such user (dead-2)", list.Out, StringComparison.Ordinal);

        var redrive = await IonCli.RunAsync(_data, ["dead-letters", "redrive", "--id", "dead-2"]);
        Assert.Equal(0, redrive.ExitCode);
        Assert.Equal("redriven: 1", redrive.Out.Trim());
        var counts = await CountsAsync();
        Assert.Equal(1, counts.Ready);
        Assert.Equal(1, counts.Dead);

        var unknown = await IonCli.RunAsync(_data, ["dead-letters", "redrive", "--id", "dead-2"]);
        Assert.Equal(1, unknown.ExitCode);
    }

    [Fact]
    public async Task DeadLetters_AreListedAndRedriven_ByFailureClass_WithProgress()
    {
        using (var database = new SqliteDatabase(Path.Combine(_data, "ion.db")))
        {
            var token = TestContext.Current.CancellationToken;
            var queue = new SqliteQueue(database, new SqliteQueueOptions(), TimeProvider.System);
            var log = new SqliteDeliveryLog(database, TimeProvider.System);
            await queue.EnqueueAsync([new("bad-1", "{}"), new("tired-1", "{}")], token);
            foreach (var message in await queue.ReceiveAsync(10, token))
            {
                var failureClass = message.Id.StartsWith("bad", StringComparison.Ordinal) ? FailureClass.Permanent : FailureClass.Transient;
                await log.RecordAsync([new DeliveryEntry(message.Id, message.QueueMessageId, MessageState.Dead, null, [new("x@example.com", RecipientState.Failed)], 1, "why", failureClass, message.Body)], token);
                await queue.DeadLetterAsync(message, new DeadLetterNote("why", failureClass, 1, 550), token);
            }
            queue.Dispose();
        }

        var list = await IonCli.RunAsync(_data, ["dead-letters", "list", "--class", "transient"]);
        Assert.Equal(0, list.ExitCode);
        Assert.StartsWith("tired-1\t", list.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("bad-1", list.Out, StringComparison.Ordinal);

        var redrive = await IonCli.RunAsync(_data, ["dead-letters", "redrive", "--class", "permanent"]);
        Assert.Equal(0, redrive.ExitCode);
        Assert.Equal("redriven: 1", redrive.Out.Trim());
        Assert.Contains("redriving: 1 moved", redrive.Error, StringComparison.Ordinal);
        Assert.Equal(new QueueCounts(1, 0, 1), await CountsAsync() with { OldestEnqueuedAt = null });

        var wrong = await IonCli.RunAsync(_data, ["dead-letters", "redrive", "--class", "nonsense"]);
        Assert.Equal(2, wrong.ExitCode);
        Assert.Contains("--class must be one of", wrong.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_WithoutARelay_Exits2_NamingTheSetting()
    {
        var result = await IonCli.RunAsync(_data, ["serve", "--urls=http://127.0.0.1:0", "--Ion:Smtp:Host="]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("Ion:Smtp:Host is not set", result.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--Ion:Smtp:Port=0", "Ion:Smtp:Port must be between 1 and 65535 (is 0)")]
    [InlineData("--Ion:Smtp:Port=abc", "'abc' at 'Ion:Smtp:Port'")]
    [InlineData("--Ion:Delivery:Concurrency=0", "Ion:Delivery:Concurrency must be between 1 and 64 (is 0)")]
    public async Task Serve_WithABadSetting_PrintsOnlyOneLine_NamingIt(string setting, string named)
    {
        var result = await IonCli.RunAsync(_data, ["serve", "--urls=http://127.0.0.1:0", "--Ion:Smtp:Host=relay.invalid", setting]);

        Assert.Equal(2, result.ExitCode);
        Assert.Equal("", result.Out);
        var line = Assert.Single(result.Error.TrimEnd('\n').Split('\n'));
        Assert.StartsWith("ion: configuration: ", line, StringComparison.Ordinal);
        Assert.Contains(named, line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownArgument_Exits2()
    {
        var result = await IonCli.RunAsync(_data, ["status", "x", "stray"]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("stray", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_TakesUrlsAndSettings_AsKeySpaceValue()
    {
        var port = Ports.Free();
        // Each setting with its value as the next argument, the ASP.NET Core convention; the relay need not be up.
        await using var ion = await IonProcess.StartAsync(port,
        [
            "--urls", $"http://127.0.0.1:{port}",
            "--Ion:DataDirectory", _data,
            "--Ion:Smtp:Host", "127.0.0.1",
            "--Ion:Smtp:Port", Ports.Free().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--Ion:Smtp:Security", "None",
        ]);

        using var health = await ion.Client.GetAsync("/healthz", TestContext.Current.CancellationToken);
        Assert.True(health.IsSuccessStatusCode);
    }

    [Fact]
    public async Task Publish_TakesSettings_AsKeySpaceValue_AfterOrBeforeTheFile()
    {
        var file = Path.Combine(_data, "news.json");
        await File.WriteAllTextAsync(file,
            """{"action":"send","from":"news@allowed.example","recipient":"a@example.com","subject":"Hi","body_text":"x"}""",
            TestContext.Current.CancellationToken);

        // The sender is allowed only by the setting, so each publish succeeds only if the setting was read as one.
        var after = await IonCli.RunAsync(_data, ["publish", file, "--Ion:DataDirectory", _data, "--Ion:AllowedSenders:0", "@allowed.example"]);
        var before = await IonCli.RunAsync(_data, ["publish", "--Ion:AllowedSenders:0", "@allowed.example", file]);

        Assert.Equal((0, ""), (after.ExitCode, after.Error));
        Assert.Equal((0, ""), (before.ExitCode, before.Error));
        Assert.Equal(2, (await CountsAsync()).Ready);
    }

    [Fact]
    public async Task Send_TakesASetting_AfterRecipients()
    {
        var result = await IonCli.RunAsync(_data,
            ["send", "--subject", "Hi", "--text", "x", "--from", "news@allowed.example", "--to", "a@example.com", "b@example.com",
             "--Ion:AllowedSenders:0", "@allowed.example"]);

        Assert.Equal((0, ""), (result.ExitCode, result.Error));
        Assert.Equal(1, (await CountsAsync()).Ready);
    }

    [Fact]
    public async Task StrayArgument_AfterASetting_Exits2_NamingIt()
    {
        var result = await IonCli.RunAsync(_data, ["status", "x", "--Ion:Delivery:MaxAttempts", "3", "stray"]);

        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.Error.TrimEnd('\n').Split('\n'));
        Assert.StartsWith("ion: unexpected argument 'stray'", line, StringComparison.Ordinal);
    }

    private SqliteQueue CreateQueue() =>
        SqliteQueue.Open(Path.Combine(_data, "ion.db"), new SqliteQueueOptions(), TimeProvider.System);

    private async Task<QueueCounts> CountsAsync()
    {
        using var queue = CreateQueue();
        return await queue.CountAsync(TestContext.Current.CancellationToken);
    }
}
