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
    public InvalidMessage? Validate(string body) => Parse(body) as InvalidMessage;

    private ParsedMessage Parse(string body)
    {
        ArgumentNullException.ThrowIfNull(body);
        // The same limit whatever the way in: HTTP checks it while reading the body, the CLI here.
        if (Encoding.UTF8.GetByteCount(body) > MaxBytes)
            return new InvalidMessage(null, $"invalid: {TooLarge}");
        var parsed = MessageParser.Parse(body, _rules);
        return parsed is SendRequest send && suppressions.RefusalOf(send.Email) is { } refused
            ? new InvalidMessage("ignore_suppression", $"invalid: ignore_suppression: {refused}")
            : parsed;
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
        for (var i = 0; i < bodies.Count; i++)
        {
            switch (Parse(bodies[i]))
            {
                case InvalidMessage invalid:
                    errors.Add(new PublishError(i, invalid));
                    break;
                case SendRequest send:
                    var id = send.Email.Id ?? MessageIds.New();
                    messages.Add(new OutgoingMessage(id, bodies[i]));
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
        List<string> ids = [.. sends.Distinct(StringComparer.Ordinal)];
        List<string> copies = [.. ids.Select(_ => OutgoingMessage.NewCopy())];
        var copyOf = ids.Zip(copies).ToDictionary(p => p.First, p => p.Second, StringComparer.Ordinal);
        IReadOnlyDictionary<string, MessageState> known;
        List<OutgoingMessage> toQueue;
        IReadOnlyList<EnqueueResult> results;
        try
        {
            known = await log.RecordQueuedAsync(ids, copies, time.GetUtcNow(), cancellationToken);
            HashSet<string> seen = new(StringComparer.Ordinal);
            toQueue = [.. messages
                .Where(m => (!known.TryGetValue(m.Id, out var state) || state == MessageState.Queued) && seen.Add(m.Id))
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
