using System.Text;
using Ion.Delivery;
using Ion.Log;
using Ion.Messages;
using Ion.Queues;
using Ion.Tests.Fixtures;
using Microsoft.Data.Sqlite;
using MimeKit;

namespace Ion.Tests.Delivery;

/// <summary>
/// A slot starts the next message's SMTP transaction while the previous outcome is being recorded, but the relay does
/// not get that message's content (so cannot accept it) before the record is committed: a crash still repeats at most
/// one message per connection (issue 7), and the commit no longer waits in line with the send (issue 14, item 4).
/// </summary>
public class RecordBeforeDataTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private static CancellationToken Token => TestContext.Current.CancellationToken;
    private static readonly MessageRules Rules = new IonOptions { DefaultSender = "ion@test.example" }.ToMessageRules();

    public static TheoryData<string> Shapes => ["text", "text and html", "attachment", "8-bit text"];

    [Theory]
    [MemberData(nameof(Shapes))]
    public async Task AWaitingBody_WritesTheMessage_ByteForByte_AsTheBodyItself(string shape)
    {
        var message = Build(shape);
        var plain = await WriteAsync(message);
        message.Body = new WaitingBody(message.Body!, Task.CompletedTask);
        Assert.Equal(Encoding.UTF8.GetString(plain), Encoding.UTF8.GetString(await WriteAsync(message)));
    }

    [Fact]
    public async Task AWaitingBody_PreparedFor7Bit_CarriesTheTransferEncodingItsBodyGot()
    {
        var plain = Build("8-bit text");
        plain.Prepare(EncodingConstraint.SevenBit);
        var waiting = Build("8-bit text");
        waiting.Body = new WaitingBody(waiting.Body!, Task.CompletedTask);
        waiting.Prepare(EncodingConstraint.SevenBit);

        var written = Encoding.ASCII.GetString(await WriteAsync(waiting));
        Assert.Equal(Encoding.ASCII.GetString(await WriteAsync(plain)), written);
        output.WriteLine(written);
        // MimeKit chose an encoding for 7-bit (base64 here), and the header the relay gets says which.
        Assert.Contains("Content-Transfer-Encoding: base64", written, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Köln", written, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheTransactionGoes_ButItsEndOfDataWaits_UntilTheRecordBeforeItIsDone()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var sender = new SmtpSender(Options(relay.Port), TimeProvider.System);
        var recorded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var send = sender.SendAsync(Build("text"), "ion@test.example", ["a@x.example"], recorded.Task, Token);
        // MAIL, RCPT and DATA went (the relay offers SIZE, and measuring for it does not wait) ...
        await relay.WaitUntilAsync(() => relay.Count(ScriptedStage.Data) == 1, Wait, "DATA");
        await Task.Delay(300, Token);
        // ... the end of the data did not.
        Assert.Equal(0, relay.Count(ScriptedStage.EndOfData));
        Assert.False(send.IsCompleted);

        recorded.SetResult();
        var outcome = await send;
        Assert.Equal(OutcomeKind.Accepted, outcome.Summary.Kind);
        Assert.Equal("text", Assert.Single(relay.Delivered).ParseMessage().Subject);
    }

    [Fact]
    public async Task ARecordThatFails_DropsTheConnectionBeforeTheEndOfData_AndTheSendThrowsWhy()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var sender = new SmtpSender(Options(relay.Port), TimeProvider.System);
        var recorded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var send = sender.SendAsync(Build("text"), "ion@test.example", ["a@x.example"], recorded.Task, Token);
        await relay.WaitUntilAsync(() => relay.Count(ScriptedStage.Data) == 1, Wait, "DATA");
        recorded.SetException(new StoreUnavailableException("the database is damaged", fault: StoreFault.Damaged));

        var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => send);
        Assert.Equal(StoreFault.Damaged, error.Fault);
        // The relay saw the data cut off: nothing delivered, no end of data, no QUIT inside the data.
        await relay.WaitUntilAsync(() => relay.Transactions.Count == 1 && !relay.Transactions[0].Delivered && relay.Count(ScriptedStage.Quit) == 0, Wait, "the transaction cut off");
        await Task.Delay(200, Token);
        Assert.Empty(relay.Delivered);
        Assert.Equal(0, relay.Count(ScriptedStage.EndOfData));

        // The next message goes on a new connection.
        var next = await sender.SendAsync(Build("text and html"), "ion@test.example", ["a@x.example"], Task.CompletedTask, Token);
        Assert.Equal(OutcomeKind.Accepted, next.Summary.Kind);
        Assert.Equal(2, relay.Connections);
        Assert.Equal("text and html", Assert.Single(relay.Delivered).ParseMessage().Subject);
    }

    [Fact]
    public async Task WhileAnOutcomeCannotBeCommitted_TheRelayNeverHasTheNextMessage_AndAllAreSentOnce()
    {
        // Four messages queued; the relay's 250 for the first holds the database's write lock for a while, as another
        // process or a slow disk would: the second message's transaction may start, but not end.
        var data = Directory.CreateTempSubdirectory("ion-record-").FullName;
        var lines = string.Join('\n', Enumerable.Range(1, 4).Select(i =>
            $$"""{"action":"send","id":"rb-{{i}}","recipient":"r{{i}}@x.example","subject":"m{{i}}","body_text":"x"}"""));
        Assert.Equal(0, (await IonCli.RunAsync(data, ["publish", "-"], lines)).ExitCode);

        SqliteConnection? locker = null;
        var locked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var relay = await ScriptedSmtpServer.StartAsync(context =>
        {
            if (context.Stage == ScriptedStage.EndOfData && context.TransactionNumber == 1 && locker is null)
            {
                locker = new SqliteConnection($"Data Source={Path.Combine(data, "ion.db")};Pooling=False");
                locker.Open();
                using var begin = locker.CreateCommand();
                begin.CommandText = "BEGIN IMMEDIATE";
                begin.ExecuteNonQuery();
                locked.SetResult();
            }
            return null;
        });
        try
        {
            await using var ion = await IonServer.StartAsync(relay.Port, $"--Ion:DataDirectory={data}", "--Ion:Delivery:Concurrency=1");
            await locked.Task.WaitAsync(Wait, Token);
            // The next transaction started while the first outcome waits for the lock ...
            await relay.WaitUntilAsync(() => relay.Count(ScriptedStage.Data) >= 2, Wait, "the second DATA");
            await Task.Delay(1000, Token);
            // ... and the relay has only the message whose outcome is being recorded.
            Assert.Single(relay.Delivered);
            Assert.Equal(1, relay.Count(ScriptedStage.EndOfData));

            using (var rollback = locker!.CreateCommand())
            {
                rollback.CommandText = "ROLLBACK";
                rollback.ExecuteNonQuery();
            }
            await relay.WaitForDeliveredAsync(4, Wait);
            foreach (var i in Enumerable.Range(1, 4))
                await ion.WaitForStatusAsync($"rb-{i}", r => r.State == MessageState.Sent, Wait);
            output.WriteLine(relay.Transcript(40));
            Assert.Equal(["m1", "m2", "m3", "m4"], relay.Delivered.Select(t => t.ParseMessage().Subject));
        }
        finally
        {
            locker?.Dispose();
            SqliteConnection.ClearAllPools();
            Directory.Delete(data, recursive: true);
        }
    }

    private static SmtpOptions Options(int port) => new()
    {
        Host = "127.0.0.1",
        Port = port,
        Security = SmtpSecurity.None,
        ConnectTimeout = TimeSpan.FromSeconds(5),
        CommandTimeout = TimeSpan.FromSeconds(5),
    };

    private static MimeMessage Build(string shape)
    {
        var email = new EmailMessage
        {
            To = ["a@x.example"],
            Subject = shape,
            BodyText = shape == "8-bit text" ? "Grüße aus Köln, ça va ?\nLine two without an end" : "plain text",
            BodyHtml = shape == "text and html" ? "<p>html</p>" : null,
            Attachments = shape == "attachment" ? [new Attachment("report.pdf", "application/pdf", [1, 2, 3, 0, 255])] : [],
        };
        return MimeBuilder.Build(email, "waiting-body-1", Rules, new DateTimeOffset(2026, 12, 7, 12, 0, 0, TimeSpan.Zero));
    }

    private static async Task<byte[]> WriteAsync(MimeMessage message)
    {
        using var stream = new MemoryStream();
        await message.WriteToAsync(stream, Token);
        return stream.ToArray();
    }
}
