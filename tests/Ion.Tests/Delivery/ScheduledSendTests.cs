using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Ion.Log;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Delivery;

/// <summary>send_at through ion serve on the SQLite store, end to end: accepted and stored now, delivered not before
/// its time, cancellable while scheduled (issue 16).</summary>
public class ScheduledSendTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static object Message(string id, DateTimeOffset sendAt) => new
    {
        action = "send", id, recipient = "a@example.com", subject = $"scheduled {id}", body_text = "x",
        send_at = sendAt.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
    };

    [Fact]
    public async Task Scheduled_IsAcceptedAndShownScheduled_AndDeliveredNotBeforeItsTime()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(sink.Port);
        var sendAt = TruncateToMs(TimeProvider.System.GetUtcNow().AddSeconds(2));

        await ion.PublishAsync(Message("later-1", sendAt));

        var scheduled = await ion.StatusAsync("later-1");
        Assert.Equal(MessageState.Scheduled, scheduled!.State);
        Assert.Equal(sendAt, scheduled.SendAt);
        // Until just before its time nothing reaches the relay.
        while (TimeProvider.System.GetUtcNow() < sendAt - TimeSpan.FromMilliseconds(300))
        {
            Assert.Equal(0, sink.Count);
            await Task.Delay(100, Token);
        }
        await sink.WaitForMessagesAsync(1, Wait);
        var sent = await ion.WaitForStatusAsync("later-1", r => r.State == MessageState.Sent, Wait);
        // The log's own time of the attempt, not the test's clock, says it went after send_at.
        Assert.True(Assert.Single(sent.Attempts).At >= sendAt, $"sent at {sent.Attempts[0].At:O}, scheduled for {sendAt:O}");
        Assert.Null(sent.SendAt);
    }

    [Fact]
    public async Task Cancelled_WhileScheduled_IsNeverDelivered_AndPublishingItAgainSendsNothing()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(sink.Port);
        var sendAt = TimeProvider.System.GetUtcNow().AddSeconds(2);
        await ion.PublishAsync(Message("cancel-1", sendAt));

        using var cancel = await ion.Client.DeleteAsync("/v1/messages/cancel-1", Token);

        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        var answer = await cancel.Content.ReadFromJsonAsync<DeliveryRecord>(IonServer.Json, Token);
        Assert.Equal(MessageState.Cancelled, answer!.State);
        var again = await PostAsync(ion, Message("cancel-1", TimeProvider.System.GetUtcNow()));
        Assert.Equal(HttpStatusCode.Accepted, again.Status);
        Assert.True(again.Body.GetProperty("duplicate").GetBoolean());
        Assert.Equal("cancelled", again.Body.GetProperty("state").GetString());
        // Past its time, and past a republish that asked for now: the queue's copy came up and was completed unsent.
        await IonServer.WaitUntilAsync(async () => (await ion.App.Services.GetRequiredService<Ion.Queues.IMessageQueue>().CountAsync(Token)) is { Ready: 0, Delayed: 0 },
            "the cancelled message's copy left the queue", Wait);
        Assert.True(TimeProvider.System.GetUtcNow() >= sendAt - TimeSpan.FromSeconds(1));
        Assert.Equal(0, sink.Count);
        var record = await ion.StatusAsync("cancel-1");
        Assert.Equal(MessageState.Cancelled, record!.State);
        Assert.Empty(record.Attempts);
        // Cancelling again says the same.
        using var twice = await ion.Client.DeleteAsync("/v1/messages/cancel-1", Token);
        Assert.Equal(HttpStatusCode.OK, twice.StatusCode);
    }

    [Fact]
    public async Task Cancel_OfASentMessage_IsAConflict_AndOfAnUnknownOne_NotFound()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(sink.Port);
        await ion.PublishAsync(new { action = "send", id = "sent-1", recipient = "a@example.com", subject = "now", body_text = "x" });
        await ion.WaitForStatusAsync("sent-1", r => r.State == MessageState.Sent, Wait);

        using var sent = await ion.Client.DeleteAsync("/v1/messages/sent-1", Token);
        using var unknown = await ion.Client.DeleteAsync("/v1/messages/nobody-1", Token);

        Assert.Equal(HttpStatusCode.Conflict, sent.StatusCode);
        var problem = await sent.Content.ReadFromJsonAsync<JsonElement>(Token);
        Assert.Equal("sent", problem.GetProperty("state").GetString());
        Assert.Contains("only a scheduled message can be cancelled", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal(MessageState.Sent, (await ion.StatusAsync("sent-1"))!.State);
        Assert.Equal(1, sink.Count);
    }

    public static TheoryData<string, string> RefusedTimes => new()
    {
        { "2026-12-24T09:00:00", "has no offset" },
        { "next tuesday", "is not an ISO 8601 time" },
        { "", "is not an ISO 8601 time" },
    };

    [Theory]
    [MemberData(nameof(RefusedTimes))]
    public async Task Publish_WithASendAtThatIsNotAnIsoTimeWithAnOffset_Is400_NamingTheField(string sendAt, string problem)
    {
        await using var ion = await IonServer.StartAsync(Ports.Free());

        var answer = await PostAsync(ion, new { action = "send", recipient = "a@example.com", subject = "s", body_text = "x", send_at = sendAt });

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("send_at", answer.Body.GetProperty("field").GetString());
        Assert.Contains(problem, answer.Body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Publish_WithASendAtMoreThanThirtyDaysAhead_Is400_AndNothingIsStored()
    {
        await using var ion = await IonServer.StartAsync(Ports.Free());
        var tooFar = TimeProvider.System.GetUtcNow().AddDays(31);

        var answer = await PostAsync(ion, Message("far-1", tooFar));

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("send_at", answer.Body.GetProperty("field").GetString());
        Assert.Contains("is more than 30 days ahead", answer.Body.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Null(await ion.StatusAsync("far-1"));
    }

    [Fact]
    public async Task Publish_WithASendAtInThePast_IsSentAtOnce_NotScheduled()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(sink.Port);

        var answer = await PostAsync(ion, Message("past-1", TimeProvider.System.GetUtcNow().AddDays(-1)));

        Assert.Equal(HttpStatusCode.Accepted, answer.Status);
        await sink.WaitForMessagesAsync(1, Wait);
        Assert.Equal(MessageState.Sent, (await ion.WaitForStatusAsync("past-1", r => r.State == MessageState.Sent, Wait)).State);
    }

    private static DateTimeOffset TruncateToMs(DateTimeOffset time) => DateTimeOffset.FromUnixTimeMilliseconds(time.ToUnixTimeMilliseconds());

    private static async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(IonServer ion, object message)
    {
        using var response = await ion.Client.PostAsJsonAsync("/v1/messages", message, Token);
        return (response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>(Token));
    }
}
