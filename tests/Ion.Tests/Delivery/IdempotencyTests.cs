using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Ion.Log;
using Ion.Queues;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Delivery;

/// <summary>An id is delivered at most once whatever the timing of its publishes; a repeated publish answers 202 with
/// the same id and changes nothing (issue 7, item 2).</summary>
public class IdempotencyTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static object Message(string id) =>
        new { action = "send", id, recipient = "a@example.com", subject = $"idempotent {id}", body_text = "x" };

    [Fact]
    public async Task SameId_PublishedManyTimesAtOnce_IsDeliveredOnce_AndEachPublishGetsTheId()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Delivery:Concurrency=4");

        var answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Task.Run(() => PostAsync(ion, Message("order-7")), Token)));

        Assert.All(answers, a => Assert.Equal((HttpStatusCode.Accepted, "order-7"), (a.Status, a.Id)));
        await ion.WaitForStatusAsync("order-7", r => r.State == MessageState.Sent, Wait);
        await Task.Delay(1000, Token);
        Assert.Single(relay.Delivered);
        Assert.Single((await ion.StatusAsync("order-7"))!.Attempts);
    }

    [Fact]
    public async Task SameId_PublishedAgainWhileItIsBeingSent_IsDeliveredOnce()
    {
        // The relay takes its time over the message, as a client's retry of a timed-out POST arrives.
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.Slow(ScriptedStage.EndOfData, TimeSpan.FromSeconds(1)));
        // Two connections: the second copy would have a free slot to go out on at once.
        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Delivery:Concurrency=2");

        await ion.PublishAsync(Message("retry-1"));
        await relay.WaitForTransactionsAsync(1, Wait);
        var again = await PostAsync(ion, Message("retry-1"));

        Assert.Equal((HttpStatusCode.Accepted, "retry-1"), (again.Status, again.Id));
        Assert.True(again.Body.GetProperty("duplicate").GetBoolean());
        await ion.WaitForStatusAsync("retry-1", r => r.State == MessageState.Sent, Wait);
        await Task.Delay(1500, Token);
        Assert.Single(relay.Delivered);
    }

    [Fact]
    public async Task SameId_PublishedAgainWhileWaitingForARetry_ChangesNothing()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipientTimes("a@example.com", 2, 451, "4.3.0 Try again later"));
        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Delivery:RetryBaseDelay=00:00:01", "--Ion:Delivery:RetryMaxDelay=00:00:01");

        await ion.PublishAsync(Message("later-1"));
        await ion.WaitForStatusAsync("later-1", r => r.State == MessageState.Retrying, Wait);
        var again = await PostAsync(ion, Message("later-1"));

        Assert.Equal("retrying", again.Body.GetProperty("state").GetString());
        var sent = await ion.WaitForStatusAsync("later-1", r => r.State == MessageState.Sent, Wait);
        // Two refusals and the delivery: the second publish added no attempt of its own.
        Assert.Equal(["retry", "retry", "sent"], sent.Attempts.Select(a => a.Outcome));
        Assert.Single(relay.Delivered);
    }

    [Fact]
    public async Task SameId_PublishedAgainAfterItWasSent_ChangesNothing()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port);
        await ion.PublishAsync(Message("done-1"));
        await ion.WaitForStatusAsync("done-1", r => r.State == MessageState.Sent, Wait);

        var again = await PostAsync(ion, Message("done-1"));

        Assert.Equal((HttpStatusCode.Accepted, "sent"), (again.Status, again.Body.GetProperty("state").GetString()));
        Assert.Equal(new QueueCounts(0, 0, 0), await ion.Services.GetRequiredService<IMessageQueue>().CountAsync(Token));
        Assert.Single(relay.Delivered);
    }

    [Fact]
    public async Task SameId_PublishedAgainAfterItDied_ChangesNothing_RedriveIsTheWayBack()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(("a@example.com", 550, "5.1.1 No such user")));
        // The relay refuses with "5.1.1 no such user" and the test redrives: the mailbox counts as fixed, not suppressed.
        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Suppression:Enabled=false");
        await ion.PublishAsync(Message("dead-1"));
        await ion.WaitForStatusAsync("dead-1", r => r.State == MessageState.Dead, Wait);

        var again = await PostAsync(ion, Message("dead-1"));

        Assert.Equal((HttpStatusCode.Accepted, "dead"), (again.Status, again.Body.GetProperty("state").GetString()));
        var queue = ion.Services.GetRequiredService<IMessageQueue>();
        Assert.Equal(new QueueCounts(0, 0, 1), await queue.CountAsync(Token));

        relay.Script = null;
        using var redrive = await ion.Client.PostAsJsonAsync("/v1/dead-letters/redrive", new { ids = new[] { "dead-1" } }, Token);
        redrive.EnsureSuccessStatusCode();
        await ion.WaitForStatusAsync("dead-1", r => r.State == MessageState.Sent, Wait);
        Assert.Single(relay.Delivered);
    }

    private static async Task<(HttpStatusCode Status, string? Id, JsonElement Body)> PostAsync(IonServer ion, object message)
    {
        using var response = await ion.Client.PostAsJsonAsync("/v1/messages", message, Token);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Token);
        return (response.StatusCode, body.TryGetProperty("id", out var id) ? id.GetString() : null, body);
    }
}
