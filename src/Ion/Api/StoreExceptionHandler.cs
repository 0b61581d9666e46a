using Ion.Queues;
using Microsoft.AspNetCore.Diagnostics;

namespace Ion.Api;

/// <summary>A request the store could not serve (a full disk, a file locked too long, SQS or DynamoDB not answering, a
/// damaged file) answers 503 with <c>Retry-After</c> and a problem body saying why: the title is <c>storage full</c>,
/// <c>store unavailable</c> or <c>store damaged</c>, the detail the store's reason. It is an answer, not a crash: no stack
/// trace per request; <see cref="StoreHealth"/> logs the change once.</summary>
internal sealed class StoreExceptionHandler(StoreHealth health) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not StoreUnavailableException unavailable)
            return false;
        health.Failed(unavailable);
        var problem = new StoreProblem(unavailable.Fault, unavailable.Message, DateTimeOffset.MinValue);
        httpContext.Response.Headers.RetryAfter = ((int)problem.RetryAfter.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: problem.Title, detail: unavailable.Message)
            .ExecuteAsync(httpContext);
        return true;
    }
}
