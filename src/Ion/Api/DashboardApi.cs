using System.Collections.Frozen;
using System.Security.Cryptography;
using Ion.Log;
using Ion.Queues;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Net.Http.Headers;

namespace Ion.Api;

/// <summary>
/// The dashboard at <c>/</c>: one page, a script and a style sheet embedded in ion.dll (Ion.csproj), served from memory,
/// so it works from <c>dotnet run</c>, the build output or a single file alike and needs no build step, no files beside
/// the binary and no static-files middleware in the NativeAOT link. The page reads the JSON API with the API's token;
/// <c>GET /v1/activity</c> is what it needs that the rest of the API does not say.
/// </summary>
public static class DashboardApi
{
    private const int MaxRecent = 100;

    // The page holds no data, so it needs no token; but it shows what the API says, so it keeps everything else out:
    // its own script and style only, calls to ion only, no framing.
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

    private static readonly FrozenDictionary<string, Asset> Assets = new Dictionary<string, Asset>
    {
        ["index.html"] = Asset.Load("index.html", "text/html; charset=utf-8"),
        ["dashboard.js"] = Asset.Load("dashboard.js", "text/javascript; charset=utf-8"),
        ["dashboard.css"] = Asset.Load("dashboard.css", "text/css; charset=utf-8"),
    }.ToFrozenDictionary(StringComparer.Ordinal);

    public static IEndpointRouteBuilder MapDashboard(this IEndpointRouteBuilder app)
    {
        app.MapGet("/", (HttpResponse response) => Serve("index.html", response));
        app.MapGet("/dashboard/{name}", (string name, HttpResponse response) => Serve(name, response));
        app.MapGet("/v1/activity", GetActivityAsync);
        return app;
    }

    /// <summary>The page and its assets, which load without the token (see <see cref="ApiServices.UseApi"/>).</summary>
    internal static bool IsPage(PathString path) => path == "/" || path.StartsWithSegments("/dashboard");

    private static Results<FileContentHttpResult, NotFound> Serve(string name, HttpResponse response)
    {
        if (!Assets.TryGetValue(name, out var asset))
            return TypedResults.NotFound();
        // Revalidated each time (a new ion brings a new page), answered 304 by the ETag when unchanged.
        response.Headers.CacheControl = "no-cache";
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers["Referrer-Policy"] = "no-referrer";
        response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
        return TypedResults.File(asset.Content, asset.ContentType, entityTag: asset.ETag);
    }

    /// <summary>The counts (the queue's), and where the log keeps them, the last hour per minute (the current minute
    /// last, sixty in all) and the latest finished messages; null where the store keeps no such history.</summary>
    private static async Task<Results<Ok<ActivitySnapshot>, ProblemHttpResult>> GetActivityAsync(
        IMessageQueue queue, IDeliveryLog log, TimeProvider time, CancellationToken cancellationToken, int recent = 20)
    {
        if (recent is < 0 or > MaxRecent)
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid recent", detail: $"recent must be between 0 and {MaxRecent}");
        var now = time.GetUtcNow();
        var thisMinute = new DateTimeOffset(now.UtcTicks - now.UtcTicks % TimeSpan.TicksPerMinute, TimeSpan.Zero);
        var firstMinute = thisMinute.AddMinutes(-59);

        var counts = await queue.CountAsync(cancellationToken);
        var minutes = await log.GetThroughputAsync(firstMinute, cancellationToken);
        var finished = await log.ListRecentAsync(recent, cancellationToken);

        List<MinuteActivity>? series = null;
        if (minutes is not null)
        {
            var byMinute = minutes.ToDictionary(m => m.Minute.UtcTicks);
            series = [.. Enumerable.Range(0, 60)
                .Select(i => firstMinute.AddMinutes(i))
                .Select(minute => byMinute.GetValueOrDefault(minute.UtcTicks) ?? new MinuteActivity(minute, 0, 0))];
        }
        return TypedResults.Ok(new ActivitySnapshot(now, counts.Ready, counts.Delayed, counts.Dead, series?.Sum(m => (long)m.Sent), series, finished));
    }

    private sealed record Asset(byte[] Content, string ContentType, EntityTagHeaderValue ETag)
    {
        public static Asset Load(string name, string contentType)
        {
            using var stream = typeof(DashboardApi).Assembly.GetManifestResourceStream($"dashboard/{name}")
                ?? throw new InvalidOperationException($"the dashboard's {name} is not embedded in ion (see Ion.csproj)");
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            var content = buffer.ToArray();
            return new Asset(content, contentType, new EntityTagHeaderValue($"\"{Convert.ToHexStringLower(SHA256.HashData(content))[..16]}\""));
        }
    }
}

/// <summary>What the dashboard shows at a glance. <see cref="Queued"/>: waiting to be taken; <see cref="InFlight"/>:
/// taken, or waiting for a retry's time; <see cref="DeadLetters"/>: in the dead letters. <see cref="SentLastHour"/>,
/// <see cref="Throughput"/> (per minute, oldest first) and <see cref="Recent"/> (newest first) are null when the store
/// keeps no history (the AWS store).</summary>
public sealed record ActivitySnapshot(
    DateTimeOffset At,
    long Queued,
    long InFlight,
    long DeadLetters,
    long? SentLastHour,
    IReadOnlyList<MinuteActivity>? Throughput,
    IReadOnlyList<FinishedMessage>? Recent);
