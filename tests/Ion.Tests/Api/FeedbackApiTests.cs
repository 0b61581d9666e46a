using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Ion.Log;
using Ion.Tests.Fixtures;
using static Ion.Tests.Suppression.FeedbackSamples;

namespace Ion.Tests.Api;

/// <summary>Bounces and complaints posted after the send (issue 15, item 2) suppress their addresses, against a real
/// ion and a real SMTP server: the next message does not go to them.</summary>
// Reads ion's numbers off /metrics: alone, as OpenTelemetry listens to meters by name, process-wide (MetricsCollection).
[Collection(nameof(MetricsCollection))]
public class FeedbackApiTests(ITestOutputHelper output)
{
    private const string ApiToken = "api-token-0123456789";
    private const string FeedbackToken = "feedback-token-0123456789";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AnSesBounce_AsSnsPostsIt_SuppressesItsAddress_LinkedToTheEmail_AndTheNextMessageGoesToTheOthersOnly()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port);
        var first = await ion.PublishAsync(new { action = "send", to = new[] { "alice@x.example", "bob@y.example" }, subject = "1", body_text = "x" });
        await ion.WaitForStatusAsync(first, r => r.State == MessageState.Sent, Wait);
        var messageId = Assert.Single(relay.Transactions).ParseMessage().MessageId;

        // What SNS posts to an HTTP(S) subscription: its envelope, as text/plain.
        var answer = await PostAsync(ion.Client, "/v1/feedback/ses", SnsEnvelope(SesBounce("Permanent", "General", messageId,
            ("bob@y.example", "5.1.1", "smtp; 550 5.1.1 <bob@y.example>: Recipient address rejected: User unknown"))), "text/plain; charset=UTF-8");
        Assert.Equal((1, 0, 0), Counts(answer));

        var bob = await ion.Client.GetFromJsonAsync<JsonElement>("/v1/suppressions/bob@y.example", Token);
        output.WriteLine(bob.ToString());
        Assert.Equal("bounce", bob.GetProperty("reason").GetString());
        Assert.StartsWith("SES bounce Permanent/General: 5.1.1 smtp; 550 5.1.1", bob.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(messageId, bob.GetProperty("message_id").GetString());
        Assert.NotEqual(JsonValueKind.Null, bob.GetProperty("expires_at").ValueKind);

        var second = await ion.PublishAsync(new { action = "send", to = new[] { "alice@x.example", "bob@y.example" }, subject = "2", body_text = "x" });
        var sent = await ion.WaitForStatusAsync(second, r => r.State == MessageState.Sent, Wait);
        Assert.Equal([RecipientState.Sent, RecipientState.Suppressed], sent.Recipients.Select(r => r.State));
        Assert.Equal(["alice@x.example"], Assert.Single(relay.Transactions, t => t.ParseMessage().Subject == "2").Recipients.Select(r => r.Address));

        var metrics = await ion.Client.GetStringAsync("/metrics", Token);
        Assert.Contains(metrics.Split('\n'), line => line.StartsWith("ion_feedback_recipients_total{", StringComparison.Ordinal)
            && line.Contains("outcome=\"suppressed\"", StringComparison.Ordinal) && line.Contains("source=\"ses\"", StringComparison.Ordinal) && line.EndsWith(" 1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AComplaint_SuppressesForEver_AndALaterBounceDoesNotDowngradeIt()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port);

        Assert.Equal((1, 0, 0), Counts(await PostAsync(ion.Client, "/v1/feedback/ses", SesComplaint("abuse", null, "carol@y.example"), "application/json")));
        Assert.Equal((1, 0, 0), Counts(await PostAsync(ion.Client, "/v1/feedback/ses",
            SesBounce("Permanent", "General", null, ("carol@y.example", "5.1.1", null)), "application/json")));

        var carol = await ion.Client.GetFromJsonAsync<JsonElement>("/v1/suppressions/carol@y.example", Token);
        Assert.Equal("complaint", carol.GetProperty("reason").GetString());
        Assert.Equal("SES complaint (abuse)", carol.GetProperty("detail").GetString());
        Assert.Equal(JsonValueKind.Null, carol.GetProperty("expires_at").ValueKind);

        var id = await ion.PublishAsync(new { action = "send", recipient = "carol@y.example", subject = "s", body_text = "x" });
        await ion.WaitForStatusAsync(id, r => r.State == MessageState.Suppressed, Wait);
        Assert.Empty(relay.Transactions);
    }

    [Fact]
    public async Task ATransientBounce_AndADelivery_SuppressNothing()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port);

        Assert.Equal((0, 1, 0), Counts(await PostAsync(ion.Client, "/v1/feedback/ses", SnsEnvelope(SesBounce("Transient", "MailboxFull", null,
            ("dave@y.example", "5.2.2", "smtp; 552 5.2.2 The email account that you tried to reach is over quota"))), "text/plain")));
        Assert.Equal((0, 2, 0), Counts(await PostAsync(ion.Client, "/v1/feedback/ses", SesDelivery("dave@y.example", "erin@y.example"), "application/json")));
        Assert.Equal(HttpStatusCode.NotFound, (await ion.Client.GetAsync("/v1/suppressions/dave@y.example", Token)).StatusCode);

        var id = await ion.PublishAsync(new { action = "send", recipient = "dave@y.example", subject = "s", body_text = "x" });
        await ion.WaitForStatusAsync(id, r => r.State == MessageState.Sent, Wait);
    }

    [Fact]
    public async Task APostfixBounceMail_Posted_SuppressesTheFailedRecipient_LinkedToTheEmail_AndNotTheDelayedOne()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port);
        var first = await ion.PublishAsync(new { action = "send", to = new[] { "bob@y.example", "frank@y.example" }, subject = "1", body_text = "x" });
        await ion.WaitForStatusAsync(first, r => r.State == MessageState.Sent, Wait);
        // The returned headers are those of the email as the relay received it.
        var original = Assert.Single(relay.Transactions).ParseMessage();
        var headers = string.Join("\n", original.Headers.Select(h => h.ToString().TrimEnd('\r', '\n')));

        var bounce = PostfixBounce(headers,
            ("bob@y.example", "failed", "5.1.1", "smtp; 550 5.1.1 <bob@y.example>: Recipient address rejected: User unknown in virtual mailbox table"),
            ("frank@y.example", "delayed", "4.4.1", "X-Postfix; connect to mx.y.example[192.0.2.25]:25: Connection timed out"));
        Assert.Equal((1, 1, 0), Counts(await PostAsync(ion.Client, "/v1/feedback/dsn", bounce, "message/rfc822")));

        var bob = await ion.Client.GetFromJsonAsync<JsonElement>("/v1/suppressions/bob@y.example", Token);
        Assert.Equal("bounce", bob.GetProperty("reason").GetString());
        Assert.Equal(original.MessageId, bob.GetProperty("message_id").GetString());
        Assert.StartsWith("DSN from mail.y.example: 5.1.1", bob.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await ion.Client.GetAsync("/v1/suppressions/frank@y.example", Token)).StatusCode);

        var second = await ion.PublishAsync(new { action = "send", to = new[] { "bob@y.example", "frank@y.example" }, subject = "2", body_text = "x" });
        await ion.WaitForStatusAsync(second, r => r.State == MessageState.Sent, Wait);
        Assert.Equal(["frank@y.example"], Assert.Single(relay.Transactions, t => t.ParseMessage().Subject == "2").Recipients.Select(r => r.Address));
    }

    [Fact]
    public async Task BadInput_IsRefusedWithAProblem_NeverA500_AndBadAddressesInsideAGoodOneAreCounted()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port);

        await AssertProblemAsync(ion.Client, "/v1/feedback/ses", "{\"notificationType\":", "application/json", HttpStatusCode.BadRequest, "not JSON");
        await AssertProblemAsync(ion.Client, "/v1/feedback/ses", "{\"action\":\"send\"}", "application/json", HttpStatusCode.BadRequest, "not an SES notification");
        await AssertProblemAsync(ion.Client, "/v1/feedback/ses", SesComplaint("abuse", null, "carol@y.example"), "application/x-www-form-urlencoded",
            HttpStatusCode.UnsupportedMediaType, "application/json");
        await AssertProblemAsync(ion.Client, "/v1/feedback/ses", new string('x', 2 * 1024 * 1024), "application/json", HttpStatusCode.RequestEntityTooLarge, "at most");
        await AssertProblemAsync(ion.Client, "/v1/feedback/dsn", "From: a@x.example\nSubject: hi\n\nplain mail\n", "message/rfc822",
            HttpStatusCode.BadRequest, "report-type=delivery-status");
        await AssertProblemAsync(ion.Client, "/v1/feedback/dsn", "\0\u0001garbage", "message/rfc822", HttpStatusCode.BadRequest, "");
        await AssertProblemAsync(ion.Client, "/v1/feedback/dsn", PostfixBounce(OriginalHeaders("x@y", "bob@y.example"),
            ("bob@y.example", "failed", "5.1.1", "smtp; 550 5.1.1 User unknown")), "application/json", HttpStatusCode.UnsupportedMediaType, "message/rfc822");

        Assert.Equal((1, 0, 2), Counts(await PostAsync(ion.Client, "/v1/feedback/ses", SesBounce("Permanent", "General", null,
            ("bob@y.example", "5.1.1", null), ("bob@@y.example", "5.1.1", null), ("bob@y.example\r\nBcc: x@z.example", "5.1.1", null)), "application/json")));

        // SNS asking to confirm: answered, and the URL logged for the operator, not opened.
        var confirmation = await PostAsync(ion.Client, "/v1/feedback/ses", SnsSubscriptionConfirmation(), "text/plain");
        Assert.StartsWith("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription", confirmation.GetProperty("subscribe_url").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithTokens_TheFeedbackTokenOpensOnlyFeedback_AsBasicAuthPasswordOrBearer_AndTheApiTokenToo()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync();
        await using var ion = await IonServer.StartAsync(relay.Port, $"--Ion:Api:Token={ApiToken}", $"--Ion:Feedback:Token={FeedbackToken}");
        var body = SesComplaint("abuse", null, "carol@y.example");

        using var none = await SendAsync(ion.Client, "/v1/feedback/ses", body, null);
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.Contains("Basic", none.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        using var wrong = await SendAsync(ion.Client, "/v1/feedback/ses", body, Basic("ion", "feedback-token-wrong-0000"));
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        using var notBase64 = await SendAsync(ion.Client, "/v1/feedback/ses", body, new AuthenticationHeaderValue("Basic", "%%%"));
        Assert.Equal(HttpStatusCode.Unauthorized, notBase64.StatusCode);

        // As SNS sends https://ion:TOKEN@host/…, any user name.
        using var basic = await SendAsync(ion.Client, "/v1/feedback/ses", body, Basic("sns", FeedbackToken));
        Assert.Equal(HttpStatusCode.OK, basic.StatusCode);
        using var bearer = await SendAsync(ion.Client, "/v1/feedback/dsn", PostfixBounce(OriginalHeaders("x@y", "bob@y.example"),
            ("bob@y.example", "failed", "5.1.1", "smtp; 550 5.1.1 User unknown")), new AuthenticationHeaderValue("Bearer", FeedbackToken), "message/rfc822");
        Assert.Equal(HttpStatusCode.OK, bearer.StatusCode);
        using var api = await SendAsync(ion.Client, "/v1/feedback/ses", body, new AuthenticationHeaderValue("Bearer", ApiToken));
        Assert.Equal(HttpStatusCode.OK, api.StatusCode);

        // Nothing else.
        using var list = new HttpRequestMessage(HttpMethod.Get, "/v1/suppressions") { Headers = { Authorization = Basic("sns", FeedbackToken) } };
        Assert.Equal(HttpStatusCode.Unauthorized, (await ion.Client.SendAsync(list, Token)).StatusCode);
        using var messages = new HttpRequestMessage(HttpMethod.Get, "/v1/suppressions") { Headers = { Authorization = new("Bearer", FeedbackToken) } };
        Assert.Equal(HttpStatusCode.Unauthorized, (await ion.Client.SendAsync(messages, Token)).StatusCode);
    }

    private static AuthenticationHeaderValue Basic(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, string path, string body, AuthenticationHeaderValue? authorization, string type = "application/json")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
        request.Headers.Authorization = authorization;
        return await client.SendAsync(request, Token);
    }

    private async Task<JsonElement> PostAsync(HttpClient client, string path, string body, string type)
    {
        using var response = await SendAsync(client, path, body, null, type);
        var text = await response.Content.ReadAsStringAsync(Token);
        output.WriteLine($"{path}: {(int)response.StatusCode} {text}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private async Task AssertProblemAsync(HttpClient client, string path, string body, string type, HttpStatusCode status, string detail)
    {
        using var response = await SendAsync(client, path, body, null, type);
        var text = await response.Content.ReadAsStringAsync(Token);
        output.WriteLine($"{path}: {(int)response.StatusCode} {text}");
        Assert.Equal(status, response.StatusCode);
        Assert.Contains(detail, JsonDocument.Parse(text).RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    private static (int, int, int) Counts(JsonElement answer) =>
        (answer.GetProperty("suppressed").GetInt32(), answer.GetProperty("ignored").GetInt32(), answer.GetProperty("rejected").GetInt32());
}
