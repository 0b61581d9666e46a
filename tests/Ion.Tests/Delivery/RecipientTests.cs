using System.Net.Http.Json;
using System.Text.Json;
using Ion.Log;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Delivery;

/// <summary>Each recipient has its own outcome: one refused recipient never holds back the others, a transiently
/// refused one is retried alone, and only what failed for good is dead-lettered (issue 7, item 5); internationalised
/// addresses go to the right place (item 6).</summary>
public class RecipientTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task OneRefusedOfThree_TheOthersGetIt_TheMailboxFullOneIsRetriedAlone_OnlyTheRefusedOneIsDead()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.First(
            SmtpScripts.RefuseRecipients(("bob@y.example", 550, "5.1.1 No such user")),
            SmtpScripts.RefuseRecipientTimes("carol@z.example", 1, 452, "4.2.2 Mailbox full")));
        // The relay refuses with "5.1.1 no such user" and the test redrives: the mailbox counts as fixed, not suppressed.
        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Suppression:Enabled=false");

        var id = await ion.PublishAsync(new
        {
            action = "send", to = new[] { "alice@x.example", "bob@y.example" }, cc = new[] { "carol@z.example" },
            subject = "three recipients", body_text = "x",
        });

        var dead = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Dead, Wait);
        output.WriteLine(JsonSerializer.Serialize(dead, IonServer.Json));
        Assert.Equal(
            [("alice@x.example", RecipientState.Sent), ("bob@y.example", RecipientState.Failed), ("carol@z.example", RecipientState.Sent)],
            dead.Recipients.Select(r => (r.Address, r.State)));
        Assert.Equal(550, dead.Recipients[1].SmtpCode);
        Assert.Contains("5.1.1 No such user", dead.Recipients[1].Reply, StringComparison.Ordinal);
        Assert.Equal("1 of 3 recipients failed (2 sent): bob@y.example: rejected: 550 5.1.1 No such user", dead.LastReason);
        Assert.Equal(["partial", "sent"], dead.Attempts.Select(a => a.Outcome));

        // The relay got the message twice: for alice (carol was full then), then for carol alone.
        var delivered = relay.Delivered;
        Assert.Equal(2, delivered.Count);
        Assert.Equal(["alice@x.example"], delivered[0].AcceptedRecipients);
        Assert.Equal(["carol@z.example"], delivered[1].Recipients.Select(r => r.Address));
        // Both copies carry every recipient in their headers (bob's refusal is the relay's business, not the letter's).
        Assert.All(delivered, t => Assert.Contains("bob@y.example", t.ParseMessage().To.ToString(), StringComparison.Ordinal));

        // The dead letter is listed with who got it; a redrive retries bob alone, not alice and carol again.
        var letter = Assert.Single(await ion.Client.GetFromJsonAsync<List<DeadLetter>>("/v1/dead-letters", IonServer.Json, Token) ?? []);
        Assert.Equal(FailureClass.Permanent, letter.FailureClass);
        relay.Script = null;
        (await ion.Client.PostAsJsonAsync("/v1/dead-letters/redrive", new { ids = new[] { id } }, Token)).EnsureSuccessStatusCode();
        var sent = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        Assert.All(sent.Recipients, r => Assert.Equal(RecipientState.Sent, r.State));
        Assert.Equal(["bob@y.example"], relay.Delivered[2].Recipients.Select(r => r.Address));
    }

    [Fact]
    public async Task EveryRecipientRefusedForGood_DeadLettersTheMessage_WithEachReason()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(("a@x.example", 550, "5.1.1 No such user"), ("b@x.example", 553, "5.1.3 Bad address syntax")));
        await using var ion = await IonServer.StartAsync(relay.Port);

        var id = await ion.PublishAsync(new { action = "send", to = new[] { "a@x.example", "b@x.example" }, subject = "nobody", body_text = "x" });

        var dead = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Dead, Wait);
        Assert.Equal([550, 553], dead.Recipients.Select(r => r.SmtpCode));
        Assert.Contains("a@x.example: rejected: 550 5.1.1 No such user", dead.LastReason, StringComparison.Ordinal);
        Assert.Contains("b@x.example: rejected: 553 5.1.3 Bad address syntax", dead.LastReason, StringComparison.Ordinal);
        Assert.Empty(relay.Delivered);
    }

    [Fact]
    public async Task InternationalDomains_GoOutAsTheirALabels_WithoutSmtpUtf8_EvenWhenTheRelayOffersIt()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(extensions: ScriptedExtensions.Default with { SmtpUtf8 = true });
        await using var ion = await IonServer.StartAsync(relay.Port);

        var id = await ion.PublishAsync(new { action = "send", to = new[] { "Hans@BÜCHER.DE", "a@ｅxample.com", "b@xn--bcher-kva.de" }, subject = "IDN", body_text = "x" });

        await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        var transaction = Assert.Single(relay.Delivered);
        Assert.False(transaction.HasParameter("SMTPUTF8"), transaction.MailFromLine);
        Assert.Equal(["Hans@xn--bcher-kva.de", "a@example.com", "b@xn--bcher-kva.de"], transaction.Recipients.Select(r => r.Address));
        Assert.All(transaction.Recipients, r => Assert.True(System.Text.Ascii.IsValid(r.Line), r.Line));
        // The headers too, as written on the wire (MimeKit shows a parsed address decoded).
        var headers = System.Text.Encoding.UTF8.GetString(transaction.Message.Span).Split("\r\n\r\n")[0];
        Assert.Contains("Hans@xn--bcher-kva.de", headers, StringComparison.Ordinal);
        Assert.True(System.Text.Ascii.IsValid(headers), headers);
    }

    [Fact]
    public async Task NonAsciiLocalPart_IsSentWithSmtpUtf8_InATransactionOfItsOwn_WhenTheRelayOffersIt()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(extensions: ScriptedExtensions.Default with { SmtpUtf8 = true });
        await using var ion = await IonServer.StartAsync(relay.Port);

        var id = await ion.PublishAsync(new { action = "send", to = new[] { "jörg@bücher.de", "anna@example.com" }, subject = "Grüße", body_text = "x" });

        var sent = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
        Assert.All(sent.Recipients, r => Assert.Equal(RecipientState.Sent, r.State));
        var plain = Assert.Single(relay.Delivered, t => !t.HasParameter("SMTPUTF8"));
        Assert.Equal(["anna@example.com"], plain.Recipients.Select(r => r.Address));
        var international = Assert.Single(relay.Delivered, t => t.HasParameter("SMTPUTF8"));
        Assert.Equal("jörg", Assert.Single(international.Recipients).Address.Split('@')[0]);
    }

    [Fact]
    public async Task NonAsciiLocalPart_FailsClearly_WhenTheRelayDoesNotOfferSmtpUtf8_TheOthersGetIt()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(extensions: ScriptedExtensions.Default with { SmtpUtf8 = false });
        await using var ion = await IonServer.StartAsync(relay.Port);

        var id = await ion.PublishAsync(new { action = "send", to = new[] { "jörg@example.com", "anna@example.com" }, subject = "Grüße", body_text = "x" });

        var dead = await ion.WaitForStatusAsync(id, r => r.State == MessageState.Dead, Wait);
        var jorg = dead.Recipients.Single(r => r.Address == "jörg@example.com");
        Assert.Equal(RecipientState.Failed, jorg.State);
        Assert.Contains("SMTPUTF8", jorg.Reply, StringComparison.Ordinal);
        Assert.Equal(RecipientState.Sent, dead.Recipients.Single(r => r.Address == "anna@example.com").State);
        Assert.Equal(["anna@example.com"], Assert.Single(relay.Delivered).Recipients.Select(r => r.Address));
    }
}
