using Ion.Delivery;
using Ion.Queues;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Ion.Api;

public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", GetHealthAsync);
        app.MapGet("/readyz", GetReadyAsync);
        return app;
    }

    /// <summary>Alive, with what an operator wants at a glance: is the relay up, how much is waiting, how much is dead.
    /// A relay that is down, refuses ion or throttles makes ion "degraded", not unhealthy: it still accepts and keeps
    /// messages.</summary>
    private static async Task<Ok<Health>> GetHealthAsync(IMessageQueue queue, RelayCircuit circuit, SendRate rate, CancellationToken cancellationToken)
    {
        var counts = await queue.CountAsync(cancellationToken);
        var relay = circuit.IsOpen
            ? new RelayHealth("down", circuit.LastAnswer?.Reply, circuit.OpenedAt, rate.CurrentPerSecond)
            : rate.IsThrottled
                ? new RelayHealth("throttled", "the relay asked ion to slow down", rate.LastThrottledAt, rate.CurrentPerSecond)
                : new RelayHealth("up", null, null, rate.CurrentPerSecond);
        return TypedResults.Ok(new Health(relay.State == "up" ? "ok" : "degraded", relay, counts));
    }

    /// <summary>Ready when the queue answers, i.e. a publish would be accepted.</summary>
    private static async Task<Results<Ok<Health>, ProblemHttpResult>> GetReadyAsync(IMessageQueue queue, RelayCircuit circuit, SendRate rate, CancellationToken cancellationToken)
    {
        try
        {
            return await GetHealthAsync(queue, circuit, rate, cancellationToken);
        }
        catch (StoreUnavailableException error)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Queue unavailable", detail: error.Message);
        }
    }
}

public sealed record Health(string Status, RelayHealth Relay, QueueCounts Queue);

/// <summary><see cref="State"/>: <c>up</c>, <c>down</c> (unreachable, or refusing ion: <see cref="Error"/> says which) or
/// <c>throttled</c>; <see cref="RatePerSecond"/>: the most ion sends now (null: no limit).</summary>
public sealed record RelayHealth(string State, string? Error, DateTimeOffset? Since, double? RatePerSecond);
