using System.Text;
using Ion.Suppression;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Ion.Api;

/// <summary>Bounces and complaints that arrive after the send: <c>POST /v1/feedback/ses</c> takes an SES notification
/// (raw, or as SNS posts it to an HTTP(S) subscription), <c>POST /v1/feedback/dsn</c> a bounce mail (RFC 3464), as a
/// mailbox-to-HTTP bridge posts it. Both answer what became of the recipients named.</summary>
public static class FeedbackApi
{
    public const string Path = "/v1/feedback";

    public static IEndpointRouteBuilder MapFeedbackApi(this IEndpointRouteBuilder app)
    {
        var feedback = app.MapGroup(Path);
        feedback.MapPost("/ses", SesAsync);
        feedback.MapPost("/dsn", DsnAsync);
        return app;
    }

    /// <summary>200 with the counts; 200 for SNS's subscription messages too (logged with the URL to confirm, which
    /// ion does not open itself); 400 when it is not an SES notification; 415 for a body that is not JSON by type.</summary>
    private static async Task<Results<Ok<FeedbackAnswer>, ProblemHttpResult>> SesAsync(
        HttpRequest request, Feedback feedback, CancellationToken cancellationToken)
    {
        if (!feedback.HasList)
            return NoList();
        // SNS posts its JSON as text/plain.
        if (!IsOfType(request, "application/json", "text/plain"))
            return Unsupported("send the notification as application/json (SNS's text/plain is taken too)");
        if (await MessagesApi.ReadBytesAsync(request, SesNotifications.MaxBytes, cancellationToken) is not { } body)
            return TooLarge($"an SES notification is at most {SesNotifications.MaxBytes} bytes here");
        switch (SesNotifications.Read(Encoding.UTF8.GetString(body.Span)))
        {
            case SesMessage.Notification notification:
                return TypedResults.Ok(FeedbackAnswer.Of(await feedback.TakeAsync(notification.Report, cancellationToken)));
            case SesMessage.Subscription subscription:
                feedback.SubscriptionMessage(subscription.Type, subscription.TopicArn, subscription.SubscribeUrl);
                return TypedResults.Ok(new FeedbackAnswer(0, 0, 0, subscription.SubscribeUrl));
            case SesMessage.Unreadable unreadable:
                feedback.Unreadable("ses", unreadable.Problem);
                return Invalid("Invalid SES notification", unreadable.Problem);
            default:
                throw new InvalidOperationException("an SES message of an unknown kind");
        }
    }

    /// <summary>200 with the counts; 400 when the body is no delivery report; 415 unless it is typed as a mail.</summary>
    private static async Task<Results<Ok<FeedbackAnswer>, ProblemHttpResult>> DsnAsync(
        HttpRequest request, Feedback feedback, IOptions<IonOptions> ion, CancellationToken cancellationToken)
    {
        if (!feedback.HasList)
            return NoList();
        if (!IsOfType(request, "message/rfc822", "message/global"))
            return Unsupported("send the whole bounce mail, headers and body, as message/rfc822");
        // A bounce returns at most the message ion sent, and a few kilobytes of report.
        var limit = ion.Value.MaxMessageBytes;
        if (await MessagesApi.ReadBytesAsync(request, limit, cancellationToken) is not { } body)
            return TooLarge($"a bounce mail is at most Ion:MaxMessageBytes ({limit} bytes) here");
        using var mail = new MemoryStream(body.ToArray(), writable: false);
        if (!DeliveryStatusNotifications.TryRead(mail, out var report, out var problem))
        {
            feedback.Unreadable("dsn", problem);
            return Invalid("Invalid delivery status notification", problem);
        }
        return TypedResults.Ok(FeedbackAnswer.Of(await feedback.TakeAsync(report, cancellationToken)));
    }

    private static bool IsOfType(HttpRequest request, params string[] types) =>
        request.ContentType is { } value && ContentType.TryParse(value, out var type)
        && types.Any(t => string.Equals(type.MimeType, t, StringComparison.OrdinalIgnoreCase));

    private static ProblemHttpResult Invalid(string title, string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: title, detail: detail);

    private static ProblemHttpResult Unsupported(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported content type", detail: detail);

    private static ProblemHttpResult TooLarge(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Report too large", detail: detail);

    private static ProblemHttpResult NoList() =>
        TypedResults.Problem(statusCode: StatusCodes.Status501NotImplemented, title: "No suppression list",
            detail: "this store keeps no suppression list, so feedback has nowhere to go: on the AWS store, set Ion:Aws:SuppressionTable (ion aws provision creates the table)");
}

/// <summary>What became of the recipients a report named: put on the list, left alone (a transient bounce, a delivery,
/// the list switched off), skipped for an address ion cannot read. <see cref="SubscribeUrl"/> only for SNS's
/// subscription messages.</summary>
public sealed record FeedbackAnswer(int Suppressed, int Ignored, int Rejected, string? SubscribeUrl = null)
{
    public static FeedbackAnswer Of(FeedbackCounts counts) => new(counts.Suppressed, counts.Ignored, counts.Rejected);
}
