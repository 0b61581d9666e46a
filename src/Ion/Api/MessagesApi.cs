using System.Text;
using Ion.Log;
using Ion.Queues;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Ion.Api;

public static class MessagesApi
{
    public static IEndpointRouteBuilder MapMessagesApi(this IEndpointRouteBuilder app)
    {
        var messages = app.MapGroup("/v1/messages");
        messages.MapPost("/", PublishAsync);
        // A catch-all, because the contract allows '/' in an id: /v1/messages/a/b and /v1/messages/a%2Fb both find "a/b".
        messages.MapGet("/{**id}", GetAsync);
        messages.MapDelete("/{**id}", CancelAsync);
        return app;
    }

    /// <summary>202 once the message is on disk; 400 naming the field when it is invalid; 413 when too large.</summary>
    private static async Task<Results<Accepted<Published>, ProblemHttpResult>> PublishAsync(
        HttpRequest request, Publisher publisher, CancellationToken cancellationToken)
    {
        var body = await ReadBodyAsync(request, publisher.MaxBytes, cancellationToken);
        if (body is null)
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status413PayloadTooLarge,
                title: "Message too large",
                detail: publisher.TooLarge);
        }
        var result = await publisher.PublishAsync([body], cancellationToken);
        if (result.Errors is [var error, ..])
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status400BadRequest,
                title: "Invalid message",
                detail: error.Error.Reason,
                extensions: new Dictionary<string, object?> { ["field"] = error.Error.Field });
        }
        var published = result.Messages[0];
        return TypedResults.Accepted($"/v1/messages/{Uri.EscapeDataString(published.Id)}", published);
    }

    private static async Task<Results<Ok<DeliveryRecord>, ProblemHttpResult>> GetAsync(
        string id, IDeliveryLog log, CancellationToken cancellationToken)
    {
        id = PathId(id);
        var record = await log.GetAsync(id, cancellationToken);
        return record is null ? Unknown(id) : TypedResults.Ok(record);
    }

    /// <summary>Cancels a scheduled message: 200 with its record (cancelled; again 200 when it was already), 409 when it
    /// is not scheduled (any more), 404 when unknown. The id stays known, so publishing it again sends nothing.</summary>
    private static async Task<Results<Ok<DeliveryRecord>, ProblemHttpResult>> CancelAsync(
        string id, IDeliveryLog log, TimeProvider time, CancellationToken cancellationToken)
    {
        id = PathId(id);
        var result = await log.CancelAsync(id, time.GetUtcNow(), cancellationToken);
        switch (result.Outcome)
        {
            case CancelOutcome.Unknown:
                return Unknown(id);
            case CancelOutcome.Cancelled:
                return await log.GetAsync(id, cancellationToken) is { } record ? TypedResults.Ok(record) : Unknown(id);
            default:
                var state = StoredNames.Of(result.State!.Value);
                var why = result.Outcome == CancelOutcome.BeingSent
                    ? "its time has come and it is being sent"
                    : $"it is {state}, and only a scheduled message can be cancelled";
                return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Not cancellable",
                    detail: $"message '{id}' cannot be cancelled: {why}", extensions: new Dictionary<string, object?> { ["state"] = state });
        }
    }

    // Kestrel decodes every escape in the path except %2F, which it leaves for the application.
    private static string PathId(string id) => id.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);

    private static ProblemHttpResult Unknown(string id) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Unknown message", detail: $"no message with id '{id}' in the delivery log");

    /// <summary>The body as text, or null when it is over the limit (declared or actual).</summary>
    private static async Task<string?> ReadBodyAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        // Invalid UTF-8 becomes U+FFFD and then fails validation or is sent as such; it never throws here.
        return await ReadBytesAsync(request, limit, cancellationToken) is { } body ? Encoding.UTF8.GetString(body.Span) : null;
    }

    /// <summary>The body, or null when it is over the limit (declared or actual).</summary>
    internal static async Task<ReadOnlyMemory<byte>?> ReadBytesAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength > limit)
            return null;
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
            {
                if (buffer.Length + read > limit)
                    return null;
                buffer.Write(chunk, 0, read);
            }
        }
        catch (BadHttpRequestException error) when (error.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return null;
        }
        return buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
    }
}
