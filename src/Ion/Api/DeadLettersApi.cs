using Ion.Log;
using Ion.Queues;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

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

    /// <summary>Oldest first; optionally only a failure class, a recipient domain, or dead since / before a time.</summary>
    private static async Task<Results<Ok<IReadOnlyList<DeadLetter>>, ProblemHttpResult>> ListAsync(
        IDeliveryLog log, CancellationToken cancellationToken,
        int limit = 100, [FromQuery(Name = "failure_class")] string? failureClass = null, string? domain = null,
        DateTimeOffset? since = null, DateTimeOffset? before = null)
    {
        if (limit is < 1 or > 10_000)
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid limit", detail: "limit must be between 1 and 10000");
        FailureClass? wanted = null;
        if (failureClass is not null)
        {
            if (!Enum.TryParse<FailureClass>(failureClass, ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed))
                return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid failure_class",
                    detail: $"failure_class must be one of {string.Join(", ", Enum.GetValues<FailureClass>().Select(StoredNames.Of))}");
            wanted = parsed;
        }
        return TypedResults.Ok(await log.ListDeadLettersAsync(new DeadLetterQuery(limit, wanted, domain, since, before), cancellationToken));
    }

    /// <summary>No body, or <c>{}</c>: all dead letters; <c>{"ids": [...]}</c>: those; a filter
    /// (<c>failure_class</c>, <c>domain</c>, <c>since</c>, <c>before</c>): those it finds.</summary>
    private static async Task<Ok<Redriven>> RedriveAsync(
        RedriveBody? body, Redriver redriver, CancellationToken cancellationToken)
    {
        IReadOnlyList<string> moved;
        if (body?.Ids is { } ids)
            moved = await redriver.RedriveAsync(ids, cancellationToken);
        else if (body is { FailureClass: not null } or { Domain: not null } or { Since: not null } or { Before: not null })
            moved = await redriver.RedriveMatchingAsync(new DeadLetterQuery(10_000, body.FailureClass, body.Domain, body.Since, body.Before), cancellationToken);
        else
            moved = await redriver.RedriveAsync(null, cancellationToken);
        return TypedResults.Ok(new Redriven(moved.Count, moved));
    }
}

public sealed record RedriveBody(
    IReadOnlyList<string>? Ids,
    FailureClass? FailureClass = null,
    string? Domain = null,
    DateTimeOffset? Since = null,
    DateTimeOffset? Before = null);

public sealed record Redriven(int Count, IReadOnlyList<string> Ids);
