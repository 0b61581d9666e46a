namespace Ion.Events;

/// <summary>
/// Events waiting for their webhooks, kept by the store: written with what they tell of (an outcome's event in the
/// outcome's own transaction), taken by <see cref="WebhookDispatcher"/> in order per message, deleted once a webhook
/// answered 2xx, dead (kept, with why) once retried for <see cref="EventsOptions.RetryFor"/>.
/// </summary>
public interface IEventOutbox
{
    /// <summary>The store makes each webhook's copy of an event itself (an SNS topic), so it is given one copy of every
    /// event, of every type, and each webhook's filter is applied when its events are taken.</summary>
    bool FansOut => false;

    /// <summary>Keeps <paramref name="events"/> durably.</summary>
    Task AddAsync(IReadOnlyList<OutboxEvent> events, CancellationToken cancellationToken);

    /// <summary>Up to <paramref name="limit"/> events of <paramref name="webhook"/> due at <paramref name="now"/>, oldest
    /// first, none with an earlier event of the same message still waiting; each is held for <paramref name="lease"/>
    /// (another taker skips it, and it is due again after that if nothing was said of it).</summary>
    Task<IReadOnlyList<PendingEvent>> TakeAsync(string webhook, DateTimeOffset now, TimeSpan lease, int limit, CancellationToken cancellationToken);

    /// <summary>The webhook took them: forgotten.</summary>
    Task DeliveredAsync(IReadOnlyList<PendingEvent> events, CancellationToken cancellationToken);

    /// <summary>Not taken: due again at <paramref name="dueAt"/>, with why.</summary>
    Task RetryAsync(PendingEvent pending, DateTimeOffset dueAt, string why, CancellationToken cancellationToken);

    /// <summary>Given up: kept with why, no longer sent, no longer holding back the later events of its message.</summary>
    Task DeadAsync(PendingEvent pending, DateTimeOffset at, string why, CancellationToken cancellationToken);

    /// <summary>What waits for <paramref name="webhook"/>, and what died.</summary>
    Task<WebhookBacklog> BacklogAsync(string webhook, CancellationToken cancellationToken);

    /// <summary>Deletes dead events that died before <paramref name="before"/>; returns how many.</summary>
    Task<int> PruneAsync(DateTimeOffset before, CancellationToken cancellationToken);
}

/// <summary>An event taken for sending: <see cref="Key"/> is the store's, <see cref="Attempts"/> how many sends failed,
/// <see cref="MessageId"/> what orders it (see <see cref="OutboxEvent"/>). <see cref="Type"/> is set by a store that
/// <see cref="IEventOutbox.FansOut"/>, for the webhook's filter.</summary>
public sealed record PendingEvent(string Key, string EventId, string MessageId, string Payload, int Attempts, DateTimeOffset CreatedAt)
{
    public string? Type { get; init; }
}

/// <summary>A webhook's outbox at a glance: waiting, the oldest of them, dead, and the latest death.</summary>
public sealed record WebhookBacklog(int Pending, DateTimeOffset? OldestPendingAt, int Dead, DateTimeOffset? LastDeadAt, string? LastError);
