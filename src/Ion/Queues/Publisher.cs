using System.Text;
using System.Text.Json.Serialization;
using Ion.Log;
using Ion.Messages;
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
public sealed class Publisher(IMessageQueue queue, IDeliveryLog log, IOptions<IonOptions> options, TimeProvider time)
{
    private readonly MessageRules _rules = options.Value.ToMessageRules();
    private readonly long _maxBytes = options.Value.MaxMessageBytes;

    /// <summary>Why the message would be refused, or null when it is fine.</summary>
    public InvalidMessage? Validate(string body)
    {
        ArgumentNullException.ThrowIfNull(body);
        // The same limit whatever the way in: HTTP checks it while reading the body, the CLI here.
        if (Encoding.UTF8.GetByteCount(body) > _maxBytes)
            return new InvalidMessage(null, $"invalid: the message is larger than Ion:MaxMessageBytes ({_maxBytes} bytes)");
        return MessageParser.Parse(body, _rules) as InvalidMessage;
    }

    /// <summary>All or nothing: when any message is invalid none is queued, so fixing the input and publishing
    /// again cannot duplicate the valid ones.</summary>
    public async Task<PublishResult> PublishAsync(IReadOnlyList<string> bodies, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(bodies);
        List<OutgoingMessage> messages = new(bodies.Count);
        List<string> clientIds = [];
        List<PublishError> errors = [];
        for (var i = 0; i < bodies.Count; i++)
        {
            if (Validate(bodies[i]) is { } invalid)
            {
                errors.Add(new PublishError(i, invalid));
                continue;
            }
            switch (MessageParser.Parse(bodies[i], _rules))
            {
                case SendRequest { Email.Id: { } id }:
                    messages.Add(new OutgoingMessage(id, bodies[i]));
                    clientIds.Add(id);
                    break;
                default:
                    messages.Add(new OutgoingMessage(MessageIds.New(), bodies[i]));
                    break;
            }
        }
        if (errors.Count > 0)
            return new PublishResult([], errors);

        var known = await log.FindStatesAsync(clientIds, cancellationToken);
        // The same id twice in one publish is one message too.
        HashSet<string> seen = new(StringComparer.Ordinal);
        var fresh = messages.Where(m => !known.ContainsKey(m.Id) && seen.Add(m.Id)).ToList();
        var enqueuedAt = time.GetUtcNow();
        var results = await queue.EnqueueAsync(fresh, cancellationToken);
        // The queue is the durable hand-off; the log's "queued" row serves status queries and the idempotency of the
        // next publish, so a crash between the two loses nothing (the worker records the message when it takes it).
        await log.RecordQueuedAsync([.. fresh.Where((_, i) => results[i] == EnqueueResult.Queued).Select(m => m.Id)], enqueuedAt, cancellationToken);

        var queuedNow = fresh.Where((_, i) => results[i] == EnqueueResult.Queued).Select(m => m.Id).ToHashSet(StringComparer.Ordinal);
        return new PublishResult(
            [.. messages.Select(m => known.TryGetValue(m.Id, out var state)
                ? new Published(m.Id, Duplicate: true, State: state)
                : new Published(m.Id, Duplicate: !queuedNow.Remove(m.Id), State: null))],
            []);
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
