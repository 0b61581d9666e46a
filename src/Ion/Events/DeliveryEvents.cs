using System.Text.Json;
using Ion.Delivery;
using Ion.Log;
using Ion.Queues;
using Microsoft.Extensions.Options;

namespace Ion.Events;

/// <summary>
/// Turns what happens to messages into <see cref="DeliveryEvent"/>s for each webhook that wants them, and keeps them in
/// the store's outbox: an outcome's events go into the outcome's own record (<see cref="DeliveryEntry.Events"/>), so
/// both are written or neither is. Without a webhook (or a store without an outbox) there are none, and nothing is
/// written. A store that makes the webhooks' copies itself (<see cref="IEventOutbox.FansOut"/>: the AWS events topic)
/// is given one copy of every event instead.
/// </summary>
public sealed class DeliveryEvents
{
    private readonly IEventOutbox? _outbox;
    private readonly List<KeyValuePair<string, WebhookOptions>> _webhooks;
    private readonly bool _addresses;
    private readonly TimeProvider _time;

    public DeliveryEvents(IEventOutbox? outbox, IOptions<EventsOptions> options, IOptions<DeliveryOptions> delivery, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(delivery);
        _outbox = outbox;
        // Every event, once, for the store to hand to whoever subscribed (the webhooks among them).
        _webhooks = outbox is null ? []
            : outbox.FansOut ? [new("", new WebhookOptions())]
            : [.. options.Value.Webhooks.OrderBy(w => w.Key, StringComparer.Ordinal)];
        _addresses = delivery.Value.LogRecipientAddresses;
        _time = time;
    }

    /// <summary>Whether any event is recorded at all.</summary>
    public bool Enabled => _webhooks.Count > 0;

    /// <summary><paramref name="decision"/> with the events of its outcome in its entry: the recipients whose outcome
    /// changed from <paramref name="before"/> (sent, failed, suppressed), then the message's (deferred, dead).</summary>
    public Decision? Attach(Decision? decision, string messageId, DeliveryHistory before, IReadOnlyList<string> tags)
    {
        ArgumentNullException.ThrowIfNull(messageId);
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(tags);
        if (!Enabled || decision?.Entry is not { } entry)
            return decision;
        var at = _time.GetUtcNow();
        int? attempt = entry.Attempt is null ? null : entry.AttemptsUsed;
        var relay = entry.Attempt?.Relay;
        List<DeliveryEvent> happened = [];
        for (var i = 0; i < entry.Recipients.Count; i++)
        {
            var now = entry.Recipients[i];
            var was = before.Recipients.FirstOrDefault(r => string.Equals(r.Address, now.Address, StringComparison.OrdinalIgnoreCase))?.State ?? RecipientState.Pending;
            if (now.State == was)
                continue;
            var type = now.State switch
            {
                RecipientState.Sent => EventTypes.Sent,
                RecipientState.Failed => EventTypes.Failed,
                RecipientState.Suppressed => EventTypes.Suppressed,
                _ => null,
            };
            if (type is null)
                continue;
            happened.Add(New(type, at, messageId, tags) with
            {
                Attempt = type == EventTypes.Suppressed ? null : attempt,
                Relay = type == EventTypes.Suppressed ? null : relay,
                RecipientIndex = i,
                Recipient = _addresses ? now.Address : null,
                RecipientDomain = now.Address[(now.Address.LastIndexOf('@') + 1)..],
                SmtpCode = now.SmtpCode,
                Reply = now.Reply,
            });
        }
        if (entry.State == MessageState.Retrying)
        {
            happened.Add(New(EventTypes.Deferred, at, messageId, tags) with
            {
                Attempt = attempt,
                Relay = relay,
                DelaySeconds = Math.Round(decision.Delay.TotalSeconds, 3),
                SmtpCode = entry.Attempt?.SmtpCode,
                Reply = entry.Attempt?.Reply,
                Reason = entry.Reason,
            });
        }
        else if (entry.State == MessageState.Dead)
        {
            happened.Add(New(EventTypes.Dead, at, messageId, tags) with
            {
                Attempt = attempt,
                Relay = relay,
                SmtpCode = entry.Attempt?.SmtpCode,
                Reply = entry.Attempt?.Reply,
                Reason = entry.Reason,
                FailureClass = entry.FailureClass is { } failureClass ? StoredNames.Of(failureClass) : null,
            });
        }
        return happened.Count == 0 ? decision : decision with { Entry = entry with { Events = [.. happened.SelectMany(e => FanOut(e))] } };
    }

    /// <summary>The <c>accepted</c> event of a message ion is about to queue, for the enqueue to write with it
    /// (<see cref="Queues.OutgoingMessage.Events"/>); none when no webhook wants it.</summary>
    public IReadOnlyList<OutboxEvent>? Accepted(string id, IReadOnlyList<string> tags)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (!Enabled)
            return null;
        List<OutboxEvent> events = [.. FanOut(New(EventTypes.Accepted, _time.GetUtcNow(), id, tags))];
        return events.Count == 0 ? null : events;
    }

    /// <summary>Keeps a <c>redriven</c> event for each dead letter moved back to the queue.</summary>
    public Task RedrivenAsync(IReadOnlyCollection<string> ids, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (!Enabled || ids.Count == 0)
            return Task.CompletedTask;
        var at = _time.GetUtcNow();
        List<OutboxEvent> events = [.. ids.SelectMany(id => FanOut(New(EventTypes.Redriven, at, id, [])))];
        return events.Count == 0 ? Task.CompletedTask : _outbox!.AddAsync(events, cancellationToken);
    }

    /// <summary>Keeps a <c>bounced</c> or <c>complained</c> event for each recipient a report put on the list.</summary>
    public Task FeedbackAsync(string source, IReadOnlyList<Suppression.FeedbackItem> items, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (!Enabled || items.Count == 0)
            return Task.CompletedTask;
        var at = _time.GetUtcNow();
        List<OutboxEvent> events = [];
        foreach (var item in items)
        {
            var reported = new DeliveryEvent
            {
                Id = "evt_" + Guid.CreateVersion7().ToString("N"),
                Type = item.Reason == Suppression.SuppressionReason.Complaint ? EventTypes.Complained : EventTypes.Bounced,
                At = at,
                Recipient = _addresses ? item.Address : null,
                RecipientDomain = item.Address[(item.Address.LastIndexOf('@') + 1)..],
                Reply = item.Detail,
                EmailMessageId = item.MessageId,
                Source = source,
            };
            events.AddRange(FanOut(reported, "report:" + item.Address.ToUpperInvariant()));
        }
        return events.Count == 0 ? Task.CompletedTask : _outbox!.AddAsync(events, cancellationToken);
    }

    private static DeliveryEvent New(string type, DateTimeOffset at, string messageId, IReadOnlyList<string> tags) => new()
    {
        Id = "evt_" + Guid.CreateVersion7().ToString("N"),
        Type = type,
        At = at,
        MessageId = messageId,
        Tags = tags,
    };

    private IEnumerable<OutboxEvent> FanOut(DeliveryEvent happened, string? orderBy = null)
    {
        string? payload = null;
        foreach (var (name, webhook) in _webhooks)
        {
            if (!webhook.Wants(happened.Type))
                continue;
            payload ??= JsonSerializer.Serialize(happened, EventJson.Default.DeliveryEvent);
            yield return new OutboxEvent(name, happened.Id, orderBy ?? happened.MessageId!, happened.Type, payload, happened.At);
        }
    }
}

public static class EventServices
{
    /// <summary>Delivery events and their webhooks, when the store keeps an outbox.</summary>
    public static IServiceCollection AddEvents(this IServiceCollection services)
    {
        services.AddOptions<EventsOptions>().BindConfiguration(EventsOptions.Section).Checked<EventsOptions, EventsOptionsValidator>();
        services.AddSingleton(sp => new DeliveryEvents(sp.GetService<IEventOutbox>(), sp.GetRequiredService<IOptions<EventsOptions>>(),
            sp.GetRequiredService<IOptions<DeliveryOptions>>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<WebhookBacklogs>();
        return services;
    }

    /// <summary>The webhooks' sender, in a process that delivers (<c>ion serve</c>).</summary>
    public static IServiceCollection AddWebhooks(this IServiceCollection services)
    {
        services.AddHostedService<WebhookDispatcher>();
        return services;
    }
}
