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
    /// A relay that is down makes ion "degraded", not unhealthy: it still accepts and keeps messages.</summary>
    private static async Task<Ok<Health>> GetHealthAsync(IMessageQueue queue, RelayCircuit circuit, CancellationToken cancellationToken)
    {
        var counts = await queue.CountAsync(cancellationToken);
        var relay = new RelayHealth(circuit.IsOpen ? "down" : "up", circuit.IsOpen ? circuit.LastError : null, circuit.OpenedAt);
        return TypedResults.Ok(new Health(circuit.IsOpen ? "degraded" : "ok", relay, counts));
    }

    /// <summary>Ready when the queue answers, i.e. a publish would be accepted.</summary>
    private static async Task<Results<Ok<Health>, ProblemHttpResult>> GetReadyAsync(IMessageQueue queue, RelayCircuit circuit, CancellationToken cancellationToken)
    {
        try
        {
            return await GetHealthAsync(queue, circuit, cancellationToken);
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Queue unavailable", detail: error.Message);
        }
    }
}

public sealed record Health(string Status, RelayHealth Relay, QueueCounts Queue);

public sealed record RelayHealth(string State, string? Error, DateTimeOffset? Since);
