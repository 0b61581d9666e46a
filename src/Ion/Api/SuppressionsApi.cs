using Ion.Messages;
using Ion.Suppression;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Ion.Api;

/// <summary>The suppression list: <c>GET /v1/suppressions</c> (a page by address, optionally one domain or reason),
/// <c>GET /v1/suppressions/{address}</c>, <c>POST /v1/suppressions</c> (add), <c>DELETE /v1/suppressions/{address}</c>.</summary>
public static class SuppressionsApi
{
    public static IEndpointRouteBuilder MapSuppressionsApi(this IEndpointRouteBuilder app)
    {
        var suppressions = app.MapGroup("/v1/suppressions");
        suppressions.MapGet("/", ListAsync);
        suppressions.MapGet("/{address}", GetAsync);
        suppressions.MapPost("/", AddAsync);
        suppressions.MapDelete("/{address}", RemoveAsync);
        return app;
    }

    private static async Task<Results<Ok<SuppressionPage>, ProblemHttpResult>> ListAsync(
        Suppressions suppressions, TimeProvider time, CancellationToken cancellationToken,
        int limit = 100, string? domain = null, string? reason = null, string? after = null)
    {
        if (suppressions.List is not { } list)
            return NoList();
        if (limit is < 1 or > 10_000)
            return Invalid("limit", "limit must be between 1 and 10000");
        SuppressionReason? wanted = null;
        if (reason is not null)
        {
            if (!SuppressionReasons.TryParse(reason, out var parsed))
                return Invalid("reason", $"reason must be one of {SuppressionReasons.Names}");
            wanted = parsed;
        }
        var page = await list.ListAsync(new SuppressionQuery(domain is null ? null : SuppressionQuery.CanonicalDomain(domain), wanted, after, limit), time.GetUtcNow(), cancellationToken);
        // The next page starts after the last address of a full one.
        return TypedResults.Ok(new SuppressionPage(page, page.Count == limit ? page[^1].Address : null));
    }

    private static async Task<Results<Ok<SuppressedAddress>, NotFound, ProblemHttpResult>> GetAsync(
        string address, Suppressions suppressions, TimeProvider time, CancellationToken cancellationToken)
    {
        if (suppressions.List is not { } list)
            return NoList();
        if (!Addresses.TryCanonicalize(address, out var canonical, out var problem))
            return Invalid("address", problem);
        var found = await list.FindAsync([canonical], time.GetUtcNow(), cancellationToken);
        return found.TryGetValue(canonical, out var entry) ? TypedResults.Ok(entry) : TypedResults.NotFound();
    }

    private static async Task<Results<Created<SuppressedAddress>, ProblemHttpResult>> AddAsync(
        SuppressionBody body, Suppressions suppressions, TimeProvider time, CancellationToken cancellationToken)
    {
        if (suppressions.List is not { } list)
            return NoList();
        if (!Addresses.TryCanonicalize(body.Address ?? "", out var canonical, out var problem))
            return Invalid("address", problem);
        var reason = SuppressionReason.Manual;
        if (body.Reason is { } named && !SuppressionReasons.TryParse(named, out reason))
            return Invalid("reason", $"reason must be one of {SuppressionReasons.Names}");
        var entry = suppressions.New(canonical, reason, body.Detail ?? "added through the API", time.GetUtcNow());
        await list.AddAsync([entry], cancellationToken);
        return TypedResults.Created($"/v1/suppressions/{Uri.EscapeDataString(canonical)}", entry);
    }

    private static async Task<Results<NoContent, NotFound, ProblemHttpResult>> RemoveAsync(
        string address, Suppressions suppressions, CancellationToken cancellationToken)
    {
        if (suppressions.List is not { } list)
            return NoList();
        if (!Addresses.TryCanonicalize(address, out var canonical, out var problem))
            return Invalid("address", problem);
        return await list.RemoveAsync(canonical, cancellationToken) ? TypedResults.NoContent() : TypedResults.NotFound();
    }

    private static ProblemHttpResult Invalid(string field, string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: $"Invalid {field}", detail: detail);

    private static ProblemHttpResult NoList() =>
        TypedResults.Problem(statusCode: StatusCodes.Status501NotImplemented, title: "No suppression list",
            detail: "this store keeps no suppression list: on the AWS store, set Ion:Aws:SuppressionTable (ion aws provision creates the table)");
}

public sealed record SuppressionBody(string? Address, string? Reason = null, string? Detail = null);

public sealed record SuppressionPage(IReadOnlyList<SuppressedAddress> Suppressions, string? Next);
