using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using Ion.Delivery;
using Ion.Log;
using Ion.Queues;

namespace Ion;

/// <summary>
/// ion's instruments, on one <see cref="Meter"/> named <c>Ion</c>: the same names on both stores and in the Lambda.
/// Counters and histograms are recorded where things happen (publish, delivery, redrive); the queue's sizes, the relay
/// circuit and the send rate are observed when a reader collects (<c>GET /metrics</c>), from the latest
/// <see cref="QueueGauges"/> reading.
/// </summary>
public sealed class IonMetrics
{
    public const string MeterName = "Ion";

    private static readonly string[] FeedbackSources = ["ses", "dsn"];

    private readonly Counter<long> _accepted;
    private readonly Counter<long> _sent;
    private readonly Counter<long> _retried;
    private readonly Counter<long> _deadLettered;
    private readonly Counter<long> _redriven;
    private readonly Counter<long> _recipientsRefused;
    private readonly Counter<long> _recipientsSuppressed;
    private readonly Counter<long> _webhookEvents;
    private readonly Counter<long> _feedbackRecipients;
    private readonly Counter<long> _feedbackUnreadable;
    private readonly Histogram<double> _sendDuration;
    private readonly Histogram<double> _latency;

    /// <param name="queue">The queue's gauges (null: none, as in a process that only publishes or redrives).</param>
    /// <param name="relays">The relays' gauges come with the delivery's services (null: none).</param>
    /// <param name="store">Whether the store takes writes (null: not watched).</param>
    /// <param name="webhooks">The webhooks' outboxes (null: no events).</param>
    public IonMetrics(IMeterFactory meters, QueueGauges? queue = null, Relays? relays = null, SendRate? rate = null, StoreHealth? store = null,
        Events.WebhookBacklogs? webhooks = null)
    {
        ArgumentNullException.ThrowIfNull(meters);
        var meter = meters.Create(MeterName);
        _accepted = meter.CreateCounter<long>("ion.messages.accepted", "{message}", "Messages accepted into the queue (new ids)");
        _sent = meter.CreateCounter<long>("ion.messages.sent", "{message}", "Messages the relay accepted for every recipient");
        _retried = meter.CreateCounter<long>("ion.messages.retried", "{message}", "Messages put back to be tried again after a delay");
        _deadLettered = meter.CreateCounter<long>("ion.messages.dead_lettered", "{message}",
            "Messages moved to the dead letters, by failure class (permanent, transient, invalid, relay, throttled, abandoned)");
        _redriven = meter.CreateCounter<long>("ion.messages.redriven", "{message}", "Dead letters moved back to the queue");
        _recipientsRefused = meter.CreateCounter<long>("ion.recipients.refused", "{recipient}", "Recipients the relay refused for good");
        _recipientsSuppressed = meter.CreateCounter<long>("ion.recipients.suppressed", "{recipient}", "Recipients not sent to because they are on the suppression list");
        _webhookEvents = meter.CreateCounter<long>("ion.webhook.events", "{event}",
            "Delivery events a webhook was sent, by outcome: delivered (2xx), failed (retried later), dead (retried for too long)");
        _feedbackRecipients = meter.CreateCounter<long>("ion.feedback.recipients", "{recipient}",
            "Recipients named by bounce and complaint reports arriving after the send, by source (ses, dsn) and outcome (suppressed, ignored, rejected)");
        _feedbackUnreadable = meter.CreateCounter<long>("ion.feedback.unreadable", "{report}", "Reports arriving after the send that could not be read, by source");
        _sendDuration = meter.CreateHistogram<double>("ion.smtp.send.duration", "s", "One SMTP transaction: MAIL FROM to the answer to the data",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });
        _latency = meter.CreateHistogram<double>("ion.delivery.latency", "s", "From accepted into the queue to sent",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400] });
        // Every counter exists from the start, at 0: a rate or an alert over a series that appears only with its first
        // event would miss that event.
        foreach (var counter in new[] { _accepted, _redriven, _recipientsRefused, _recipientsSuppressed })
            counter.Add(0);
        // What concerns a relay is counted by relay (primary, fallback): the fallback's series only where there is one.
        Relay[] known = relays?.Fallback is null ? [Relay.Primary] : [Relay.Primary, Relay.Fallback];
        foreach (var relay in known)
        {
            _sent.Add(0, ByRelay(relay));
            _retried.Add(0, ByRelay(relay));
        }
        foreach (var failureClass in Enum.GetValues<FailureClass>())
            _deadLettered.Add(0, new KeyValuePair<string, object?>("failure_class", StoredNames.Of(failureClass)));
        foreach (var source in FeedbackSources)
        {
            _feedbackUnreadable.Add(0, new KeyValuePair<string, object?>("source", source));
            foreach (var outcome in new[] { "suppressed", "ignored", "rejected" })
                _feedbackRecipients.Add(0, new("source", source), new("outcome", outcome));
        }
        if (queue is not null)
        {
            meter.CreateObservableGauge("ion.queue.depth", () => Observe(queue.Latest?.Ready), "{message}", "Messages waiting to be sent now");
            meter.CreateObservableGauge("ion.queue.in_flight", () => Observe(queue.Latest?.Delayed), "{message}",
                "Messages being sent or waiting for a retry (hidden)");
            meter.CreateObservableGauge("ion.dead_letters.depth", () => Observe(queue.Latest?.Dead), "{message}", "Dead letters");
            meter.CreateObservableGauge("ion.queue.oldest_age", () => Observe(queue.OldestAge?.TotalSeconds),
                "s", "Age of the oldest message in the queue (not on the AWS store: CloudWatch has it)");
        }
        if (store is not null)
        {
            // One series per reason, 0 or 1, so an alert sees the change from the first scrape on.
            meter.CreateObservableGauge("ion.store.failing", () => Enum.GetValues<StoreFault>().Select(fault => new Measurement<long>(
                store.Problem?.Fault == fault ? 1 : 0, new KeyValuePair<string, object?>("reason", fault.ToString().ToLowerInvariant()))),
                "{state}", "1 while the store cannot be written, by reason (full, unavailable, damaged)");
        }
        if (webhooks is not null)
        {
            meter.CreateObservableGauge("ion.webhook.pending", () => webhooks.Latest.Select(w => new Measurement<long>(w.Value.Pending,
                new KeyValuePair<string, object?>("webhook", w.Key))), "{event}", "Events waiting for a webhook");
            meter.CreateObservableGauge("ion.webhook.dead", () => webhooks.Latest.Select(w => new Measurement<long>(w.Value.Dead,
                new KeyValuePair<string, object?>("webhook", w.Key))), "{event}", "Events a webhook never took, kept with why");
        }
        if (relays is not null)
        {
            meter.CreateObservableGauge("ion.relay.circuit_open", () => known.Select(relay => new Measurement<int>(relays[relay].IsOpen ? 1 : 0, ByRelay(relay))),
                "{state}", "1 while the relay is down or refuses ion, by relay (primary, fallback)");
        }
        if (rate is not null)
        {
            meter.CreateObservableGauge("ion.relay.rate", () => Observe(rate.CurrentPerSecond),
                "{message}/s", "The most ion sends per second now (absent: no limit)");
            meter.CreateObservableGauge("ion.relay.throttled", () => rate.IsThrottled ? 1 : 0, "{state}", "1 while the relay asks ion to slow down");
        }
    }

    // Nothing observed rather than a made-up zero when the value is not known.
    private static IEnumerable<Measurement<long>> Observe(long? value) => value is { } v ? [new Measurement<long>(v)] : [];

    private static IEnumerable<Measurement<double>> Observe(double? value) => value is { } v ? [new Measurement<double>(v)] : [];

    public void Accepted(int count)
    {
        if (count > 0)
            _accepted.Add(count);
    }

    /// <param name="relay">The relay that took the last recipients.</param>
    public void Sent(TimeSpan sinceAccepted, Relay relay)
    {
        _sent.Add(1, ByRelay(relay));
        _latency.Record(Math.Max(0, sinceAccepted.TotalSeconds));
    }

    /// <param name="relay">The relay that deferred it.</param>
    public void Retried(Relay relay) => _retried.Add(1, ByRelay(relay));

    public void DeadLettered(FailureClass failureClass) =>
        _deadLettered.Add(1, new KeyValuePair<string, object?>("failure_class", StoredNames.Of(failureClass)));

    public void Redriven(int count)
    {
        if (count > 0)
            _redriven.Add(count);
    }

    public void RecipientsRefused(int count)
    {
        if (count > 0)
            _recipientsRefused.Add(count);
    }

    public void RecipientsSuppressed(int count)
    {
        if (count > 0)
            _recipientsSuppressed.Add(count);
    }

    public void WebhookEvents(string webhook, string outcome, int count) =>
        _webhookEvents.Add(count, new KeyValuePair<string, object?>("webhook", webhook), new KeyValuePair<string, object?>("outcome", outcome));

    public void FeedbackRecipients(string source, Suppression.FeedbackCounts counts)
    {
        ArgumentNullException.ThrowIfNull(counts);
        foreach (var (outcome, count) in new[] { ("suppressed", counts.Suppressed), ("ignored", counts.Ignored), ("rejected", counts.Rejected) })
        {
            if (count > 0)
                _feedbackRecipients.Add(count, new("source", source), new("outcome", outcome));
        }
    }

    public void FeedbackUnreadable(string source) => _feedbackUnreadable.Add(1, new KeyValuePair<string, object?>("source", source));

    public void SendTook(TimeSpan elapsed, Relay relay) => _sendDuration.Record(elapsed.TotalSeconds, ByRelay(relay));

    private static KeyValuePair<string, object?> ByRelay(Relay relay) => new("relay", Relays.Name(relay));
}

/// <summary>The <c>Ion:Metrics</c> section.</summary>
public sealed class MetricsOptions
{
    public const string Section = "Ion:Metrics";

    /// <summary><c>GET /metrics</c> in the Prometheus text format. Off, ion records nothing for a reader.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>With <c>Ion:Api:Token</c> set, a scraper on this machine may read <c>/metrics</c> without it. The token
    /// rule stays for every other caller and path.</summary>
    public bool OpenOnLoopback { get; set; }

    /// <summary>How often the queue's sizes are read for the gauges.</summary>
    public TimeSpan QueueInterval { get; set; } = TimeSpan.FromSeconds(5);
}

internal sealed class MetricsOptionsValidator : IValidateOptions<MetricsOptions>
{
    public ValidateOptionsResult Validate(string? name, MetricsOptions options) =>
        options.QueueInterval > TimeSpan.Zero
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"Ion:Metrics:QueueInterval must be positive (is {options.QueueInterval})");
}
