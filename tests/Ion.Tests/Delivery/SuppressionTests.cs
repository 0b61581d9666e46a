using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Ion.Log;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Delivery;

/// <summary>An address the relay refused for good is suppressed after one attempt: the next message is not sent to
/// it (the others on it are), and a message to nobody else ends suppressed without reaching the relay (issue 15,
/// item 2). Against a real ion and a scripted SMTP server.</summary>
public class SuppressionTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A550_5_1_1_SuppressesTheAddress_TheNextMessageGoesToTheOthersOnly_AndOneToItAloneEndsSuppressed()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(
            ("bob@y.example", 550, "5.1.1 <bob@y.example>: Recipient address rejected: User unknown"),
            ("dave@y.example", 550, "5.7.1 Message rejected as spam")));
        await using var ion = await IonServer.StartAsync(relay.Port);

        var first = await ion.PublishAsync(new { action = "send", to = new[] { "alice@x.example", "bob@y.example", "dave@y.example" }, subject = "1", body_text = "x" });
        var dead = await ion.WaitForStatusAsync(first, r => r.State == MessageState.Dead, Wait);
        Assert.Equal([RecipientState.Sent, RecipientState.Failed, RecipientState.Failed], dead.Recipients.Select(r => r.State));

        // bob is suppressed, as a bounce, with the relay's words; dave's was a policy refusal, so he is not.
        var bob = await ion.Client.GetFromJsonAsync<JsonElement>("/v1/suppressions/bob@y.example", Token);
        output.WriteLine(bob.ToString());
        Assert.Equal("bounce", bob.GetProperty("reason").GetString());
        Assert.Contains("5.1.1", bob.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(first, bob.GetProperty("message_id").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await ion.Client.GetAsync("/v1/suppressions/dave@y.example", Token)).StatusCode);

        var second = await ion.PublishAsync(new { action = "send", to = new[] { "alice@x.example", "BOB@y.example" }, subject = "2", body_text = "x" });
        var sent = await ion.WaitForStatusAsync(second, r => r.State == MessageState.Sent, Wait);
        Assert.Equal([RecipientState.Sent, RecipientState.Suppressed], sent.Recipients.Select(r => r.State));
        Assert.StartsWith("suppressed (bounce since ", sent.Recipients[1].Reply, StringComparison.Ordinal);
        var transaction = Assert.Single(relay.Transactions, t => t.ParseMessage().Subject == "2");
        Assert.Equal(["alice@x.example"], transaction.Recipients.Select(r => r.Address));

        var transactions = relay.Transactions.Count;
        var third = await ion.PublishAsync(new { action = "send", recipient = "bob@y.example", subject = "3", body_text = "x" });
        var suppressed = await ion.WaitForStatusAsync(third, r => r.State == MessageState.Suppressed, Wait);
        Assert.Equal(RecipientState.Suppressed, Assert.Single(suppressed.Recipients).State);
        Assert.Equal("suppressed", Assert.Single(suppressed.Attempts).Outcome);
        Assert.Equal(0, suppressed.AttemptsUsed);
        Assert.Equal(transactions, relay.Transactions.Count);
        // Not a dead letter: nothing to redrive.
        Assert.DoesNotContain(await ion.Client.GetFromJsonAsync<List<DeadLetter>>("/v1/dead-letters", IonServer.Json, Token) ?? [], d => d.Id == third);

        // Taken off the list, bob is tried again.
        Assert.Equal(HttpStatusCode.NoContent, (await ion.Client.DeleteAsync("/v1/suppressions/bob@y.example", Token)).StatusCode);
        var fourth = await ion.PublishAsync(new { action = "send", recipient = "bob@y.example", subject = "4", body_text = "x" });
        await ion.WaitForStatusAsync(fourth, r => r.State == MessageState.Dead, Wait);
        Assert.Contains(relay.Transactions, t => t.Recipients.Any(r => r.Address == "bob@y.example") && t.Number > transactions);
    }

    [Fact]
    public async Task TheApi_AddsListsAndRemoves_AndAManualEntrySuppressesToo()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port);

        using var added = await ion.Client.PostAsJsonAsync("/v1/suppressions", new { address = "Erin@Bücher.example", detail = "asked to stop" }, Token);
        Assert.Equal(HttpStatusCode.Created, added.StatusCode);
        var entry = await added.Content.ReadFromJsonAsync<JsonElement>(Token);
        // Kept canonical: the domain as its A-label, as ion sends it.
        Assert.Equal("Erin@xn--bcher-kva.example", entry.GetProperty("address").GetString());
        Assert.Equal("manual", entry.GetProperty("reason").GetString());
        Assert.Equal(JsonValueKind.Null, entry.GetProperty("expires_at").ValueKind);
        (await ion.Client.PostAsJsonAsync("/v1/suppressions", new { address = "frank@y.example", reason = "complaint" }, Token)).EnsureSuccessStatusCode();

        var page = await ion.Client.GetFromJsonAsync<JsonElement>("/v1/suppressions?limit=1", Token);
        Assert.Equal(["Erin@xn--bcher-kva.example"], page.GetProperty("suppressions").EnumerateArray().Select(e => e.GetProperty("address").GetString()));
        var next = page.GetProperty("next").GetString();
        var rest = await ion.Client.GetFromJsonAsync<JsonElement>($"/v1/suppressions?after={Uri.EscapeDataString(next!)}", Token);
        Assert.Equal(["frank@y.example"], rest.GetProperty("suppressions").EnumerateArray().Select(e => e.GetProperty("address").GetString()));
        Assert.Equal(JsonValueKind.Null, rest.GetProperty("next").ValueKind);
        var complaints = await ion.Client.GetFromJsonAsync<JsonElement>("/v1/suppressions?reason=complaint", Token);
        Assert.Single(complaints.GetProperty("suppressions").EnumerateArray());

        Assert.Equal(HttpStatusCode.BadRequest, (await ion.Client.PostAsJsonAsync("/v1/suppressions", new { address = "not an address" }, Token)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await ion.Client.GetAsync("/v1/suppressions?reason=spam", Token)).StatusCode);

        var id = await ion.PublishAsync(new { action = "send", to = new[] { "erin@bücher.example" }, subject = "s", body_text = "x" });
        await ion.WaitForStatusAsync(id, r => r.State == MessageState.Suppressed, Wait);
        Assert.Empty(relay.Transactions);

        Assert.Equal(HttpStatusCode.NoContent, (await ion.Client.DeleteAsync("/v1/suppressions/erin@b%C3%BCcher.example", Token)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await ion.Client.DeleteAsync("/v1/suppressions/erin@b%C3%BCcher.example", Token)).StatusCode);
    }

    [Fact]
    public async Task IgnoreSuppression_IsRefusedAtPublish_UnlessAllowed_AndWhereAllowed_ReachesASuppressedRecipient()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using (var strict = await IonServer.StartAsync(relay.Port))
        {
            using var refused = await strict.Client.PostAsJsonAsync("/v1/messages",
                new { action = "send", recipient = "bob@y.example", subject = "reset", body_text = "x", ignore_suppression = true }, Token);
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            var problem = await refused.Content.ReadAsStringAsync(Token);
            output.WriteLine(problem);
            Assert.Contains("Ion:Suppression:AllowIgnore", problem, StringComparison.Ordinal);
        }

        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Suppression:AllowIgnore=true");
        (await ion.Client.PostAsJsonAsync("/v1/suppressions", new { address = "bob@y.example" }, Token)).EnsureSuccessStatusCode();

        var reset = await ion.PublishAsync(new { action = "send", to = new[] { "bob@y.example" }, subject = "reset", body_text = "x", ignore_suppression = true });
        var sent = await ion.WaitForStatusAsync(reset, r => r.State == MessageState.Sent, Wait);
        Assert.Equal(RecipientState.Sent, Assert.Single(sent.Recipients).State);
        // Without the flag the list still applies, in the same ion.
        var news = await ion.PublishAsync(new { action = "send", to = new[] { "bob@y.example" }, subject = "news", body_text = "x" });
        await ion.WaitForStatusAsync(news, r => r.State == MessageState.Suppressed, Wait);
        Assert.Equal(["reset"], relay.Transactions.Select(t => t.ParseMessage().Subject));
    }
}
