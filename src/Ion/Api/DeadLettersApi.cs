using Ion.Queues;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Ion.Api;

public static class DeadLettersApi
{
    public static IEndpointRouteBuilder MapDeadLettersApi(this IEndpointRouteBuilder app)
    {
        var deadLetters = app.MapGroup("/v1/dead-letters");
        deadLetters.MapGet("/", ListAsync);
        deadLetters.MapPost("/redrive", RedriveAsync);
        return app;
    }

    private static async Task<Results<Ok<IReadOnlyList<DeadLetter>>, ProblemHttpResult>> ListAsync(
        IMessageQueue queue, CancellationToken cancellationToken, int limit = 100)
    {
        if (limit is < 1 or > 10_000)
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid limit", detail: "limit must be between 1 and 10000");
        return TypedResults.Ok(await queue.ListDeadLettersAsync(limit, cancellationToken));
    }

    /// <summary>No body, or <c>{}</c>: all dead letters; <c>{"ids": [...]}</c>: those.</summary>
    private static async Task<Ok<Redriven>> RedriveAsync(
        RedriveBody? body, Redriver redriver, CancellationToken cancellationToken)
    {
        var moved = await redriver.RedriveAsync(body?.Ids, cancellationToken);
        return TypedResults.Ok(new Redriven(moved.Count, moved));
    }
}

public sealed record RedriveBody(IReadOnlyList<string>? Ids);

public sealed record Redriven(int Count, IReadOnlyList<string> Ids);
