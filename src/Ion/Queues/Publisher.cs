using System.Text;
using System.Text.Json.Serialization;
using Ion.Events;
using Ion.Log;
using Ion.Messages;
using Ion.Suppression;
using Microsoft.Extensions.Options;

namespace Ion.Queues;

/// <summary>
/// The topic on one machine: validates raw messages and puts them on the queue durably. Shared by
/// <c>POST /v1/messages</c>, <c>ion send</c> and <c>ion publish</c>, so all three accept exactly the same messages.
/// </summary>
/// <remarks>
/// Publishing is idempotent by id: a message whose id the delivery log knows (queued, in flight, sent or dead) is
/// answered with its id and changes nothing, so a client that retries a timed-out publish cannot cause a second
/// email. Two publishes of a new id at the same moment may both reach the queue; the store keeps one (SQLite), or
/// delivery's claim in the log sends it once (SQS).
/// </remarks>
public sealed class Publisher(IMessageQueue queue, IDeliveryLog log, IOptions<IonOptions> options, Suppressions suppressions, DeliveryEvents events, TimeProvider time, IonMetrics metrics, StoreHealth health)
{
    private readonly MessageRules _rules = options.Value.ToMessageRules();
    private readonly MessageSizeLimit _limit = queue.SizeLimit is { } store && store.MaxBodyBytes < options.Value.MaxMessageBytes
        ? store
        : new MessageSizeLimit(options.Value.MaxMessageBytes, "Ion:MaxMessageBytes");

    /// <summary>The largest message accepted, in UTF-8 bytes: <c>Ion:MaxMessageBytes</c>, or the store's own limit
    /// when that is lower (SNS's 256 KB on AWS).</summary>
    public long MaxBytes => _limit.MaxBodyBytes;

    /// <summary>Why a message over <see cref="MaxBytes"/> is refused, naming the limit.</summary>
    public string TooLarge => $"the message is larger than {_limit.Name} ({_limit.MaxBodyBytes} bytes)";

    /// <summary>Why the message would be refused, or null when it is fine.</summary>
    public InvalidMessage? Validate(string body) => Parse(body, time.GetUtcNow()) as InvalidMessage;

    private ParsedMessage Parse(string body, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(body);
        // The same limit whatever the way in: HTTP checks it while reading the body, the CLI here.
        if (Encoding.UTF8.GetByteCount(body) > MaxBytes)
            return new InvalidMessage(null, $"invalid: {TooLarge}");
        var parsed = MessageParser.Parse(body, _rules);
        if (parsed is not SendRequest send)
            return parsed;
        if (suppressions.RefusalOf(send.Email) is { } refused)
            return new InvalidMessage("ignore_suppression", $"invalid: ignore_suppression: {refused}");
        return MessageParser.ScheduleProblem(send.Email, now) ?? parsed;
    }

    /// <summary>All or nothing: when any message is invalid none is queued, so fixing the input and publishing
    /// again cannot duplicate the valid ones.</summary>
    public async Task<PublishResult> PublishAsync(IReadOnlyList<string> bodies, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(bodies);
        List<OutgoingMessage> messages = new(bodies.Count);
        List<string> sends = [];
        Dictionary<string, IReadOnlyList<string>> tags = new(StringComparer.Ordinal);
        List<PublishError> errors = [];
        // A send_at still ahead now is scheduled; one already past (or this very moment) is sent at once.
        var now = time.GetUtcNow();
        Dictionary<string, DateTimeOffset> scheduled = new(StringComparer.Ordinal);
        for (var i = 0; i < bodies.Count; i++)
        {
            switch (Parse(bodies[i], now))
            {
                case InvalidMessage invalid:
                    errors.Add(new PublishError(i, invalid));
                    break;
                case SendRequest send:
                    var id = send.Email.Id ?? MessageIds.New();
                    var sendAt = send.Email.SendAt > now ? send.Email.SendAt : null;
                    if (sendAt is { } at)
                        scheduled.TryAdd(id, at);
                    messages.Add(new OutgoingMessage(id, bodies[i], NotBefore: sendAt));
                    sends.Add(id);
                    tags.TryAdd(id, send.Email.Tags);
                    break;
                default:
                    messages.Add(new OutgoingMessage(MessageIds.New(), bodies[i]));
                    break;
            }
        }
        if (errors.Count > 0)
            return new PublishResult([], errors);

        // The log first: one write says which ids it knew, and records the others as queued. A known id is not
        // queued again, unless it is still only queued: a publish that crashed between the log and the queue left it
        // there alone, and the store (one copy per id) or delivery's claim (SQS) keeps a second copy from mattering.
        // Each copy is named now, so the log can record a new id as claimed by the copy that is about to carry it, and
        // that copy's first claim needs no write of its own (see IDeliveryLog.RecordQueuedAsync).
        // A scheduled id is recorded as such, until its time (see IDeliveryLog.RecordScheduledAsync); a batch holding both
        // kinds costs a second write.
        List<string> ids = [.. sends.Distinct(StringComparer.Ordinal).Where(id => !scheduled.ContainsKey(id))];
        List<string> copies = [.. ids.Select(_ => OutgoingMessage.NewCopy())];
        List<string> later = [.. sends.Distinct(StringComparer.Ordinal).Where(scheduled.ContainsKey)];
        var copyOf = ids.Zip(copies).Concat(later.Select(id => (id, OutgoingMessage.NewCopy())))
            .ToDictionary(p => p.Item1, p => p.Item2, StringComparer.Ordinal);
        Dictionary<string, MessageState> known = new(StringComparer.Ordinal);
        List<OutgoingMessage> toQueue;
        IReadOnlyList<EnqueueResult> results;
        try
        {
            if (ids.Count > 0)
                Add(known, await log.RecordQueuedAsync(ids, copies, now, cancellationToken));
            if (later.Count > 0)
                Add(known, await log.RecordScheduledAsync(later, [.. later.Select(id => scheduled[id])], now, cancellationToken));
            HashSet<string> seen = new(StringComparer.Ordinal);
            // Still only queued or scheduled: see above.
            toQueue = [.. messages
                .Where(m => (!known.TryGetValue(m.Id, out var state) || state is MessageState.Queued or MessageState.Scheduled) && seen.Add(m.Id))
                .Select(m => copyOf.TryGetValue(m.Id, out var copy) ? m with { Copy = copy, Events = events.Accepted(m.Id, tags[m.Id]) } : m)];
            results = await EnqueueAsync(toQueue, cancellationToken);
        }
        catch (StoreUnavailableException error)
        {
            health.Failed(error);
            throw;
        }
        health.Succeeded();
        var queuedNow = toQueue.Where((_, i) => results[i] == EnqueueResult.Queued).Select(m => m.Id).ToHashSet(StringComparer.Ordinal);
        metrics.Accepted(queuedNow.Count);

        return new PublishResult(
            [.. messages.Select(m => known.TryGetValue(m.Id, out var state)
                ? new Published(m.Id, Duplicate: true, State: state)
                : new Published(m.Id, Duplicate: !queuedNow.Remove(m.Id)))],
            []);
    }

    private static void Add(Dictionary<string, MessageState> known, IReadOnlyDictionary<string, MessageState> more)
    {
        foreach (var (id, state) in more)
            known[id] = state;
    }

    /// <summary>The queue's enqueue. When it fails, the claims the log's write recorded for the copies named here are
    /// given back: those copies may never have reached the queue, and a client's retry would otherwise wait for a claim
    /// no copy uses (up to its two hours on the AWS store). Giving them back is safe either way: a copy that did arrive
    /// claims with a write, and the copies of one id still claim one at a time.</summary>
    private async Task<IReadOnlyList<EnqueueResult>> EnqueueAsync(List<OutgoingMessage> toQueue, CancellationToken cancellationToken)
    {
        try
        {
            return await queue.EnqueueAsync(toQueue, cancellationToken);
        }
        catch (StoreUnavailableException)
        {
            List<ClaimRequest> named = [.. toQueue.Where(m => m.Copy is not null).Select(m => new ClaimRequest(m.Id, m.Copy!, time.GetUtcNow()))];
            try
            {
                if (named.Count > 0)
                    await log.ReleaseAsync(named, CancellationToken.None);
            }
            catch (StoreUnavailableException)
            {
                // The log does not answer either: the claims run out by themselves.
            }
            throw;
        }
    }
}

/// <summary><see cref="Published"/> in the order given; or, when any was invalid, the errors and nothing queued.</summary>
public sealed record PublishResult(IReadOnlyList<Published> Messages, IReadOnlyList<PublishError> Errors);

/// <summary>A published message's id. <see cref="Duplicate"/>: the id was already known, nothing changed;
/// <see cref="State"/> then says what ion had made of it, when the log knew.</summary>
public sealed record Published(
    string Id,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] bool Duplicate = false,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] MessageState? State = null);

/// <summary>The message at <see cref="Index"/> (from 0) was refused.</summary>
public sealed record PublishError(int Index, InvalidMessage Error);
