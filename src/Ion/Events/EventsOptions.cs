using Microsoft.Extensions.Options;

namespace Ion.Events;

/// <summary>The <c>Ion:Events</c> section: where delivery events go. Without a webhook ion records no events at all.</summary>
public sealed class EventsOptions
{
    public const string Section = "Ion:Events";

    /// <summary>By name (the name labels metrics and the outbox): <c>Ion:Events:Webhooks:shop:Url</c>, <c>…:Secret</c>,
    /// <c>…:Types</c>.</summary>
    public Dictionary<string, WebhookOptions> Webhooks { get; set; } = new(StringComparer.Ordinal);

    /// <summary>How long an event is retried before it is dead (kept, with its reason, for the log's retention).</summary>
    public TimeSpan RetryFor { get; set; } = TimeSpan.FromDays(1);
}

public sealed class WebhookOptions
{
    /// <summary>Where each event is POSTed, one per request (http or https).</summary>
    public string? Url { get; set; }

    /// <summary>The key of the HMAC-SHA256 signature; the receiver needs the same. <c>whsec_</c> followed by base64 is
    /// read as that key's bytes (the Standard Webhooks form), anything else as its UTF-8 bytes.</summary>
    public string? Secret { get; set; }

    /// <summary>Only these event types (<see cref="EventTypes"/>); empty: all of them.</summary>
    public List<string> Types { get; set; } = [];

    /// <summary>How long a request may take before it counts as failed.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Requests in flight at once (events of one message always go one after the other, in order).</summary>
    public int Concurrency { get; set; } = 4;

    public bool Wants(string type) => Types.Count == 0 || Types.Contains(type, StringComparer.OrdinalIgnoreCase);
}

internal sealed class EventsOptionsValidator : IValidateOptions<EventsOptions>
{
    public ValidateOptionsResult Validate(string? name, EventsOptions options)
    {
        List<string> errors = [];
        if (options.RetryFor < TimeSpan.FromSeconds(1))
            errors.Add($"{EventsOptions.Section}:RetryFor must be at least 00:00:01 (is {options.RetryFor})");
        foreach (var (webhook, o) in options.Webhooks)
        {
            var key = $"{EventsOptions.Section}:Webhooks:{webhook}";
            if (!Uri.TryCreate(o.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
                errors.Add($"{key}:Url must be an http or https URL (is '{o.Url}')");
            if (string.IsNullOrEmpty(o.Secret) || o.Secret.Length < 16)
                errors.Add($"{key}:Secret must be set, at least 16 characters: receivers check each event's signature with it");
            else if (o.Secret.StartsWith(WebhookSignature.KeyPrefix, StringComparison.Ordinal) && WebhookSignature.Key(o.Secret) is null)
                errors.Add($"{key}:Secret starts with {WebhookSignature.KeyPrefix} but the rest is not base64");
            foreach (var type in o.Types.Where(t => !EventTypes.All.Contains(t, StringComparer.OrdinalIgnoreCase)))
                errors.Add($"{key}:Types has '{type}', which is not one of {string.Join(", ", EventTypes.All)}");
            if (o.Timeout <= TimeSpan.Zero || o.Timeout > TimeSpan.FromMinutes(5))
                errors.Add($"{key}:Timeout must be between 00:00:00.001 and 00:05:00 (is {o.Timeout})");
            if (o.Concurrency is < 1 or > 64)
                errors.Add($"{key}:Concurrency must be between 1 and 64 (is {o.Concurrency})");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
