using Ion.Events;
using Microsoft.Extensions.Options;

namespace Ion.Api;

/// <summary><c>GET /v1/webhooks</c>: each configured webhook (its secret never) with what waits for it in the outbox and
/// what died there, so a receiver that stopped taking events is seen.</summary>
public static class WebhooksApi
{
    public static IEndpointRouteBuilder MapWebhooksApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/webhooks", ListAsync);
        return app;
    }

    private static async Task<IResult> ListAsync(IOptions<EventsOptions> options, IServiceProvider services, CancellationToken cancellationToken)
    {
        var outbox = services.GetService<IEventOutbox>();
        List<WebhookState> webhooks = [];
        foreach (var (name, webhook) in options.Value.Webhooks.OrderBy(w => w.Key, StringComparer.Ordinal))
        {
            var backlog = outbox is null ? new WebhookBacklog(0, null, 0, null, null) : await outbox.BacklogAsync(name, cancellationToken);
            webhooks.Add(new WebhookState(name, webhook.Url!, webhook.Types.Count == 0 ? EventTypes.All : webhook.Types,
                backlog.Pending, backlog.OldestPendingAt, backlog.Dead, backlog.LastDeadAt, backlog.LastError));
        }
        return TypedResults.Ok(new WebhookList(webhooks));
    }
}

public sealed record WebhookState(string Name, string Url, IReadOnlyList<string> Types, int Pending, DateTimeOffset? OldestPendingAt,
    int Dead, DateTimeOffset? LastDeadAt, string? LastError);

public sealed record WebhookList(IReadOnlyList<WebhookState> Webhooks);
