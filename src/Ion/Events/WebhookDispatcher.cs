using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using Ion.Queues;
using Microsoft.Extensions.Options;

namespace Ion.Events;

/// <summary>
/// Sends the outbox's events to their webhooks, each webhook on its own loop, so a slow or dead receiver holds back
/// only its own events (never delivery: the outbox is written with the outcome and read here). A request is one event,
/// signed (<see cref="WebhookSignature"/>); a 2xx answer delivers it, anything else is retried after 5 s, 10 s, 20 s …
/// up to an hour apart until <see cref="EventsOptions.RetryFor"/> has passed since the event, then it is dead.
/// </summary>
/// <remarks>A store without an outbox (AWS without <c>Ion:Aws:EventsTopicArn</c>) leaves it nothing to do. Events of one
/// message taken together go one after the other, in order, and one that fails holds back those after it.</remarks>
public sealed class WebhookDispatcher(IOptions<EventsOptions> options, WebhookBacklogs backlogs, IonMetrics metrics,
    TimeProvider time, ILogger<WebhookDispatcher> logger, IEventOutbox? store = null) : BackgroundService
{
    private static readonly TimeSpan Idle = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan LongestRetry = TimeSpan.FromHours(1);
    private static readonly TimeSpan BacklogInterval = TimeSpan.FromSeconds(5);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => store is not { } outbox
        ? Task.CompletedTask
        : Task.WhenAll(options.Value.Webhooks.Select(w => RunAsync(outbox, w.Key, w.Value, stoppingToken)));

    private async Task RunAsync(IEventOutbox outbox, string name, WebhookOptions webhook, CancellationToken stoppingToken)
    {
        await Task.Yield();
        var key = WebhookSignature.Key(webhook.Secret!)!;
        var url = new Uri(webhook.Url!);
        using var http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = webhook.Timeout };
        http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("ion", "1"));
        // Held while being sent, and a little longer: a process that stops mid-request leaves the event to be taken again.
        var lease = webhook.Timeout + TimeSpan.FromSeconds(30);
        var backlogAt = DateTimeOffset.MinValue;
        string? failing = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (time.GetUtcNow() - backlogAt >= BacklogInterval)
                {
                    backlogs.Set(name, await outbox.BacklogAsync(name, stoppingToken));
                    backlogAt = time.GetUtcNow();
                }
                var batch = await outbox.TakeAsync(name, time.GetUtcNow(), lease, webhook.Concurrency * 4, stoppingToken);
                if (batch.Count == 0)
                {
                    await Task.Delay(Idle, time, stoppingToken);
                    continue;
                }
                var errors = new ConcurrentDictionary<PendingEvent, string>();
                var unwanted = 0;
                await Parallel.ForEachAsync(batch.GroupBy(e => e.MessageId, StringComparer.Ordinal),
                    new ParallelOptions { MaxDegreeOfParallelism = webhook.Concurrency, CancellationToken = stoppingToken },
                    async (events, cancellationToken) =>
                    {
                        string? failed = null;
                        foreach (var pending in events)
                        {
                            // A store that fans out gives every type; the webhook takes only those it wants.
                            if (pending.Type is { } type && !webhook.Wants(type))
                            {
                                Interlocked.Increment(ref unwanted);
                                continue;
                            }
                            if (failed is not null)
                            {
                                errors[pending] = $"waits for an earlier event of its message, which {failed}";
                                continue;
                            }
                            failed = await SendAsync(http, url, key, pending, cancellationToken);
                            if (failed is not null)
                                errors[pending] = failed;
                        }
                    });
                var delivered = batch.Where(e => !errors.ContainsKey(e)).ToList();
                if (delivered.Count > 0)
                {
                    await outbox.DeliveredAsync(delivered, CancellationToken.None);
                    if (delivered.Count > unwanted)
                        metrics.WebhookEvents(name, "delivered", delivered.Count - unwanted);
                }
                foreach (var (pending, error) in errors)
                    await FailedAsync(outbox, name, pending, error);
                // One line when a receiver starts failing and one when it takes events again, not one per event.
                var now = errors.IsEmpty ? null : errors.Values.First();
                if (now is not null && failing is null)
                    Log.WebhookFailing(logger, name, now);
                else if (now is null && failing is not null && delivered.Count > 0)
                    Log.WebhookBack(logger, name);
                failing = now ?? (delivered.Count > 0 ? null : failing);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (StoreUnavailableException error)
            {
                Log.OutboxUnavailable(logger, name, error.Message);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(5), time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task<string?> SendAsync(HttpClient http, Uri url, byte[] key, PendingEvent pending, CancellationToken cancellationToken)
    {
        var body = Encoding.UTF8.GetBytes(pending.Payload);
        var timestamp = time.GetUtcNow();
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        request.Headers.Add("webhook-id", pending.EventId);
        request.Headers.Add("webhook-timestamp", timestamp.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.Add("webhook-signature", WebhookSignature.Sign(key, pending.EventId, timestamp, body));
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            return response.IsSuccessStatusCode ? null : $"answered {(int)response.StatusCode} {response.ReasonPhrase}";
        }
        catch (HttpRequestException error)
        {
            return $"could not be reached: {error.Message}";
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return $"did not answer within {http.Timeout.TotalSeconds:0.###} s";
        }
    }

    private async Task FailedAsync(IEventOutbox outbox, string name, PendingEvent pending, string error)
    {
        var now = time.GetUtcNow();
        var deadline = pending.CreatedAt + options.Value.RetryFor;
        if (now >= deadline)
        {
            await outbox.DeadAsync(pending, now, $"{error} ({pending.Attempts + 1} attempts over {options.Value.RetryFor})", CancellationToken.None);
            metrics.WebhookEvents(name, "dead", 1);
            Log.EventDead(logger, name, pending.EventId, pending.MessageId, error);
            return;
        }
        // 5 s, 10 s, 20 s … an hour, with a tenth of jitter so that a receiver coming back is not met by every event at once.
        var delay = TimeSpan.FromTicks(Math.Min(LongestRetry.Ticks, FirstRetry.Ticks << Math.Min(pending.Attempts, 20)));
        delay *= 0.9 + Random.Shared.NextDouble() * 0.2;
        var next = now + delay < deadline ? now + delay : deadline;
        await outbox.RetryAsync(pending, next, error, CancellationToken.None);
        metrics.WebhookEvents(name, "failed", 1);
    }
}

/// <summary>The latest <see cref="WebhookBacklog"/> of each webhook, for the gauges and the API.</summary>
public sealed class WebhookBacklogs
{
    private readonly ConcurrentDictionary<string, WebhookBacklog> _latest = new(StringComparer.Ordinal);

    public void Set(string webhook, WebhookBacklog backlog) => _latest[webhook] = backlog;

    public IReadOnlyDictionary<string, WebhookBacklog> Latest => _latest;
}

internal static partial class Log
{
    [LoggerMessage(801, LogLevel.Warning, "Webhook {Webhook} is not taking events: it {Error}; they wait in the outbox and are retried")]
    public static partial void WebhookFailing(ILogger logger, string webhook, string error);

    [LoggerMessage(802, LogLevel.Information, "Webhook {Webhook} takes events again")]
    public static partial void WebhookBack(ILogger logger, string webhook);

    [LoggerMessage(803, LogLevel.Error, "Webhook {Webhook}: event {EventId} of message {MessageId} is dead, retried for too long: it {Error}")]
    public static partial void EventDead(ILogger logger, string webhook, string eventId, string messageId, string error);

    [LoggerMessage(804, LogLevel.Warning, "Webhook {Webhook}: the event outbox cannot be read now: {Error}")]
    public static partial void OutboxUnavailable(ILogger logger, string webhook, string error);
}
