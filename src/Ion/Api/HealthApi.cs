using System.Text.Json;
using System.Text.Json.Serialization;
using Ion.Delivery;
using Ion.Queues;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Ion.Api;

/// <summary>
/// Health as ASP.NET Core health checks: <c>store</c> (the queue answers) and <c>relay</c> (the circuit is closed, or
/// why not). <c>/healthz</c> says ion is alive, with what an operator wants at a glance (the relay's state, the queue's
/// counts); it answers 200 while the process runs. <c>/readyz</c> answers 503 when the store does not answer, so a
/// publish would fail; a relay that is down only makes it degraded (200), since ion still accepts and keeps messages.
/// </summary>
public static class HealthApi
{
    public static IServiceCollection AddHealth(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddCheck<StoreHealthCheck>(StoreHealthCheck.Name)
            .AddCheck<RelayHealthCheck>(RelayHealthCheck.Name);
        return services;
    }

    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        app.MapHealthChecks("/healthz", new HealthCheckOptions
        {
            ResponseWriter = WriteAsync,
            ResultStatusCodes =
            {
                [HealthStatus.Healthy] = StatusCodes.Status200OK,
                [HealthStatus.Degraded] = StatusCodes.Status200OK,
                [HealthStatus.Unhealthy] = StatusCodes.Status200OK,
            },
        });
        app.MapHealthChecks("/readyz", new HealthCheckOptions { ResponseWriter = WriteAsync });
        return app;
    }

    /// <summary>The same document on both routes: <c>status</c> (<c>ok</c>, <c>degraded</c>, <c>unavailable</c>), the
    /// relay (the primary), the fallback relay (null without one), the queue's counts (null when the store did not
    /// answer), and each check with why it is not healthy.</summary>
    private static Task WriteAsync(HttpContext context, HealthReport report)
    {
        var relays = report.Entries.TryGetValue(RelayHealthCheck.Name, out var r) ? r.Data : null;
        var relay = relays is not null && relays.TryGetValue("relay", out var state) ? state as RelayHealth : null;
        var fallback = relays is not null && relays.TryGetValue("fallback", out var fallbackState) ? fallbackState as RelayHealth : null;
        var queue = report.Entries.TryGetValue(StoreHealthCheck.Name, out var q) && q.Data.TryGetValue("queue", out var counts) ? counts as QueueCounts : null;
        var status = report.Status switch
        {
            HealthStatus.Healthy => "ok",
            HealthStatus.Degraded => "degraded",
            _ => "unavailable",
        };
        var checks = report.Entries.Select(e => new CheckResult(e.Key, e.Value.Status.ToString().ToLowerInvariant(), e.Value.Description)).ToList();
        context.Response.ContentType = "application/json; charset=utf-8";
        return JsonSerializer.SerializeAsync(context.Response.Body, new Health(status, relay, queue, checks, fallback), HealthJson.Default.Health, context.RequestAborted);
    }
}

/// <summary>The store takes writes (as the last publish or receive found it) and the queue answers: what a publish
/// needs. A full disk still lets the queue be read, so the counts alone would say all is well.</summary>
internal sealed class StoreHealthCheck(IMessageQueue queue, StoreHealth health) : IHealthCheck
{
    public const string Name = "store";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        QueueCounts? counts = null;
        try
        {
            counts = await queue.CountAsync(cancellationToken);
        }
        catch (StoreUnavailableException error)
        {
            health.Failed(error);
        }
        var data = counts is null ? null : new Dictionary<string, object> { ["queue"] = counts };
        return health.Problem is { } problem
            ? HealthCheckResult.Unhealthy($"{problem.Title} since {problem.Since:u}: {problem.Reason}", data: data)
            : HealthCheckResult.Healthy(data: data);
    }
}

/// <summary>The relay: up; down (unreachable, or refusing ion itself), with the reason and since when; or throttling
/// ion. Anything but up is degraded, not unhealthy: ion still accepts and keeps messages. The fallback relay, when
/// there is one, is told the same way; a fallback that is down degrades health too, since mail would have nowhere
/// to go if the primary went down.</summary>
internal sealed class RelayHealthCheck(Relays relays, SendRate rate) : IHealthCheck
{
    public const string Name = "relay";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var relay = State(relays.Primary, rate.IsThrottled);
        var data = new Dictionary<string, object> { ["relay"] = relay };
        List<string> problems = relay.State == "up" ? [] : [$"relay {relay.State}: {relay.Error}"];
        if (relays.Fallback is { } circuit)
        {
            var fallback = State(circuit, throttled: false);
            data["fallback"] = fallback;
            if (fallback.State != "up")
                problems.Add($"fallback relay {fallback.State}: {fallback.Error}");
            else if (relay.State == "down")
                problems.Add("the fallback relay carries the mail meanwhile");
        }
        return Task.FromResult(problems.Count == 0
            ? HealthCheckResult.Healthy(data: data)
            : HealthCheckResult.Degraded(string.Join("; ", problems), data: data));
    }

    // One send rate serves both relays (ion's own limit; either relay's "too fast" slows it down), told with the
    // primary's state, as before there was a fallback.
    private RelayHealth State(RelayCircuit circuit, bool throttled) => circuit.IsOpen
        ? new RelayHealth("down", circuit.LastAnswer?.Reply, circuit.OpenedAt, rate.CurrentPerSecond)
        : throttled
            ? new RelayHealth("throttled", "the relay asked ion to slow down", rate.LastThrottledAt, rate.CurrentPerSecond)
            : new RelayHealth("up", null, null, rate.CurrentPerSecond);
}

/// <summary><see cref="Fallback"/>: the fallback relay (<c>Ion:Smtp:Fallback</c>), null without one.</summary>
public sealed record Health(string Status, RelayHealth? Relay, QueueCounts? Queue, IReadOnlyList<CheckResult> Checks, RelayHealth? Fallback = null);

/// <summary>One health check: <c>healthy</c>, <c>degraded</c> or <c>unhealthy</c>, and why when not healthy.</summary>
public sealed record CheckResult(string Name, string Status, string? Description);

/// <summary><see cref="State"/>: <c>up</c>, <c>down</c> (unreachable, or refusing ion: <see cref="Error"/> says which) or
/// <c>throttled</c>; <see cref="RatePerSecond"/>: the most ion sends now (null: no limit).</summary>
public sealed record RelayHealth(string State, string? Error, DateTimeOffset? Since, double? RatePerSecond);

/// <summary>The health document's JSON, in the API's style (snake_case), written by generated code.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(Health))]
internal sealed partial class HealthJson : JsonSerializerContext;
