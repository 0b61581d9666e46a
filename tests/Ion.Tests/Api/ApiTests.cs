using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Ion.Tests.Fixtures;
using Microsoft.Extensions.Options;

namespace Ion.Tests.Api;

/// <summary>The HTTP API over real HTTP (Kestrel on loopback); nothing is delivered here (the relay port is closed).</summary>
public class ApiTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Publish_AnswersAccepted_WithTheId_AndStatusSaysQueued()
    {
        await using var ion = await IonServer.StartAsync(Ports.Free());

        using var response = await ion.Client.PostAsJsonAsync("/v1/messages",
            new { action = "send", id = "welcome-7", recipient = "a@example.com", subject = "Hi", body_text = "x" }, Token);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Token);
        Assert.Equal("welcome-7", body.GetProperty("id").GetString());
        Assert.Equal("/v1/messages/welcome-7", response.Headers.Location?.ToString());
        var status = await ion.StatusAsync("welcome-7");
        Assert.NotNull(status);
        Assert.Equal(Ion.Log.MessageState.Queued, status.State);
    }

    [Fact]
    public async Task Publish_WithoutAnId_GetsOneMadeUp()
    {
        await using var ion = await IonServer.StartAsync(Ports.Free());

        var first = await ion.PublishAsync(new { action = "send", recipient = "a@example.com", subject = "Hi", body_text = "x" });
        var second = await ion.PublishAsync(new { action = "send", recipient = "a@example.com", subject = "Hi", body_text = "x" });

        Assert.False(string.IsNullOrWhiteSpace(first));
        Assert.NotEqual(first, second);
    }

    [Theory]
    [InlineData("{\"action\":\"send\",\"recipient\":\"not-an-address\",\"subject\":\"Hi\",\"body_text\":\"x\"}", "recipient")]
    [InlineData("{\"action\":\"send\",\"recipient\":\"a@example.com\",\"subject\":\"Hi\\r\\nBcc: x@example.com\",\"body_text\":\"x\"}", "subject")]
    [InlineData("{\"action\":\"send\",\"recipient\":\"a@example.com\",\"subject\":\"Hi\"}", null)]
    [InlineData("{\"action\":\"send\",\"recipient\":\"a@example.com\",\"subject\":\"Hi\",\"body_text\":\"x\",\"from\":\"ceo@elsewhere.example\"}", "from")]
    [InlineData("not json at all", null)]
    public async Task InvalidMessage_IsRefusedWith400_NamingTheField_AndNothingIsQueued(string json, string? field)
    {
        await using var ion = await IonServer.StartAsync(Ports.Free());

        using var response = await ion.Client.PostAsync("/v1/messages", new StringContent(json, Encoding.UTF8, "application/json"), Token);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Token);
        Assert.StartsWith("invalid: ", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        if (field is not null)
            Assert.Equal(field, problem.GetProperty("field").GetString());
        var counts = await ion.Services.GetRequiredService<Ion.Queues.IMessageQueue>().CountAsync(Token);
        Assert.Equal(0, counts.Ready + counts.Delayed);
    }

    [Fact]
    public async Task Publish_OverTheSizeLimit_Answers413()
    {
        await using var ion = await IonServer.StartAsync(Ports.Free(), "--Ion:MaxMessageBytes=2048");
        var big = JsonSerializer.Serialize(new { action = "send", recipient = "a@example.com", subject = "Hi", body_text = new string('x', 4000) });

        using var response = await ion.Client.PostAsync("/v1/messages", new StringContent(big, Encoding.UTF8, "application/json"), Token);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("Ion:MaxMessageBytes", await response.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);
    }

    [Fact]
    public async Task IdWithSlashes_IsFoundAtItsLocation_EscapedOrNot()
    {
        await using var ion = await IonServer.StartAsync(Ports.Free(), "--Ion:Delivery:Enabled=false");
        const string id = "orders/2026/42";

        using var published = await ion.Client.PostAsJsonAsync("/v1/messages", new { action = "send", id, recipient = "a@example.com", subject = "Hi", body_text = "x" }, Token);

        Assert.Equal(HttpStatusCode.Accepted, published.StatusCode);
        Assert.Equal("/v1/messages/orders%2F2026%2F42", published.Headers.Location!.OriginalString);
        foreach (var path in new[] { published.Headers.Location.OriginalString, "/v1/messages/orders/2026/42" })
        {
            using var status = await ion.Client.GetAsync(path, Token);
            Assert.Equal(HttpStatusCode.OK, status.StatusCode);
            Assert.Equal(id, (await status.Content.ReadFromJsonAsync<JsonElement>(Token)).GetProperty("id").GetString());
        }
    }

    [Fact]
    public async Task Status_OfAnUnknownId_Is404()
    {
        await using var ion = await IonServer.StartAsync(Ports.Free());

        using var response = await ion.Client.GetAsync("/v1/messages/never-published", Token);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task WithAToken_EveryRouteButHealth_RequiresIt()
    {
        const string secret = "0123456789abcdef-test-token";
        await using var ion = await IonServer.StartAsync(Ports.Free(), $"--Ion:Api:Token={secret}");

        Assert.Equal(HttpStatusCode.OK, (await ion.Client.GetAsync("/healthz", Token)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ion.Client.GetAsync("/readyz", Token)).StatusCode);
        foreach (var path in new[] { "/v1/dead-letters", "/v1/messages/x" })
        {
            using var anonymous = await ion.Client.GetAsync(path, Token);
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.Equal("Bearer", anonymous.Headers.WwwAuthenticate.Single().Scheme);
        }
        using (var wrong = new HttpRequestMessage(HttpMethod.Get, "/v1/dead-letters"))
        {
            wrong.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret + "x");
            Assert.Equal(HttpStatusCode.Unauthorized, (await ion.Client.SendAsync(wrong, Token)).StatusCode);
        }
        ion.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        Assert.Equal(HttpStatusCode.OK, (await ion.Client.GetAsync("/v1/dead-letters", Token)).StatusCode);
        await ion.PublishAsync(new { action = "send", recipient = "a@example.com", subject = "Hi", body_text = "x" });
    }

    [Theory]
    [InlineData("http://0.0.0.0:0")]
    [InlineData("http://*:8780")]
    [InlineData("http://127.0.0.1:0;http://192.0.2.10:8780")]
    public async Task WithoutAToken_ListeningOffLoopback_FailsAtStart_NamingTheSetting(string urls)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => IonServer.StartAsync(Ports.Free(), $"--urls={urls}"));

        Assert.Contains("Ion:Api:Token", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--Ion:Smtp:Port=70000", "Ion:Smtp:Port")]
    [InlineData("--Ion:Delivery:Concurrency=0", "Ion:Delivery:Concurrency")]
    [InlineData("--Ion:DefaultSender=not-an-address", "Ion:DefaultSender")]
    [InlineData("--Ion:Smtp:Host=", "Ion:Smtp:Host")]
    [InlineData("--Ion:Delivery:RetryBaseDelay=-00:00:01", "Ion:Delivery:RetryBaseDelay")]
    public async Task BadConfiguration_FailsAtStart_NamingTheSetting(string setting, string named)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => IonServer.StartAsync(Ports.Free(), setting));

        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Security_None_ToARemoteRelay_IsRefused_UnlessForced()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() =>
            IonServer.StartAsync(Ports.Free(), "--Ion:Smtp:Host=smtp.example.com"));
        Assert.Contains("Ion:Smtp:Security", error.Message, StringComparison.Ordinal);

        // Forced, it passes validation (checked directly: a running ion would try to reach the remote host).
        var forced = new Ion.Delivery.SmtpOptionsValidator().Validate(null, new Ion.Delivery.SmtpOptions
        {
            Host = "smtp.example.com",
            Port = 25,
            Security = Ion.Delivery.SmtpSecurity.None,
            AllowInsecure = true,
        });
        Assert.True(forced.Succeeded, forced.FailureMessage);
    }
}
