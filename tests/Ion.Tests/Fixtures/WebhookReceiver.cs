using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Ion.Tests.Fixtures;

/// <summary>
/// A real HTTP receiver of ion's webhooks (Kestrel on 127.0.0.1) that checks each request's signature as the README
/// tells a receiver to, written here from the README, not from ion's code: HMAC-SHA256 with the secret over
/// <c>{webhook-id}.{webhook-timestamp}.{body}</c>, base64, as <c>v1,…</c> in <c>webhook-signature</c>, and a timestamp
/// no more than five minutes away. It can answer slowly, refuse (an HTTP status), or stop listening and come back on
/// the same port.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    public static readonly TimeSpan Tolerance = TimeSpan.FromMinutes(5);

    private readonly string _secret;
    private readonly ConcurrentQueue<Received> _received = new();
    private WebApplication? _app;

    private WebhookReceiver(string secret, int port)
    {
        _secret = secret;
        Port = port;
    }

    public sealed record Received(string Id, string Timestamp, string Signature, string Body, bool Verified, DateTimeOffset At, int Answered)
    {
        public JsonElement Event => JsonDocument.Parse(Body).RootElement;
        public string Type => Event.GetProperty("type").GetString()!;
        public string MessageId => Event.GetProperty("message_id").GetString()!;
    }

    public int Port { get; }
    public string Url => $"http://127.0.0.1:{Port}/ion-events";

    /// <summary>The status to answer with (200 by default).</summary>
    public int Status { get; set; } = 200;

    /// <summary>How long to take before answering.</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>Every request answered, in the order of their answers, with the status each got.</summary>
    public IReadOnlyList<Received> Requests => [.. _received];

    /// <summary>The requests answered 2xx, as a receiver would keep them.</summary>
    public IReadOnlyList<Received> Taken => [.. _received.Where(r => r.Answered is >= 200 and < 300)];

    public static async Task<WebhookReceiver> StartAsync(string secret)
    {
        var receiver = new WebhookReceiver(secret, Ports.Free());
        await receiver.StartListeningAsync();
        return receiver;
    }

    public async Task StartListeningAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{Port}");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.MapPost("/ion-events", async (HttpRequest request) =>
        {
            using var reader = new StreamReader(request.Body, Encoding.UTF8);
            var body = await reader.ReadToEndAsync();
            var id = request.Headers["webhook-id"].ToString();
            var timestamp = request.Headers["webhook-timestamp"].ToString();
            var signature = request.Headers["webhook-signature"].ToString();
            var at = TimeProvider.System.GetUtcNow();
            var verified = Verify(_secret, id, timestamp, signature, body, at);
            if (Delay > TimeSpan.Zero)
                await Task.Delay(Delay);
            var status = verified ? Status : 400;
            _received.Enqueue(new Received(id, timestamp, signature, body, verified, at, status));
            return Results.StatusCode(status);
        });
        await app.StartAsync();
        _app = app;
    }

    public async Task StopListeningAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>The README's check, as a receiver writes it.</summary>
    public static bool Verify(string secret, string id, string timestamp, string signature, string body, DateTimeOffset now)
    {
        if (!long.TryParse(timestamp, out var seconds) || (now - DateTimeOffset.FromUnixTimeSeconds(seconds)).Duration() > Tolerance)
            return false;
        var key = secret.StartsWith("whsec_", StringComparison.Ordinal) ? Convert.FromBase64String(secret[6..]) : Encoding.UTF8.GetBytes(secret);
        var expected = "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{id}.{timestamp}.{body}")));
        // The header may carry several signatures, space-separated (a secret being rotated).
        return signature.Split(' ').Any(s => CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(s), Encoding.UTF8.GetBytes(expected)));
    }

    /// <summary>Waits until <paramref name="done"/> holds of what was taken.</summary>
    public async Task<IReadOnlyList<Received>> WaitForAsync(Func<IReadOnlyList<Received>, bool> done, TimeSpan timeout)
    {
        var deadline = TimeProvider.System.GetUtcNow() + timeout;
        while (true)
        {
            var taken = Taken;
            if (done(taken))
                return taken;
            if (TimeProvider.System.GetUtcNow() > deadline)
                throw new TimeoutException($"after {timeout}: {taken.Count} event(s) taken: {string.Join(", ", taken.Select(t => $"{t.MessageId}/{t.Type}"))}; {Requests.Count} request(s) in all");
            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync() => await StopListeningAsync();
}
