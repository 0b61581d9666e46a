using Ion.Log;
using Ion.Messages;
using Microsoft.Extensions.Options;

namespace Ion.Queues;

/// <summary>
/// The topic on one machine: validates raw messages and puts them on the queue durably. Shared by
/// <c>POST /v1/messages</c>, <c>ion send</c> and <c>ion publish</c>, so all three accept exactly the same messages.
/// </summary>
public sealed class Publisher(IMessageQueue queue, IDeliveryLog log, IOptions<IonOptions> options, TimeProvider time)
{
    private readonly MessageRules _rules = options.Value.ToMessageRules();

    /// <summary>Why the message would be refused, or null when it is fine.</summary>
    public InvalidMessage? Validate(string body) => MessageParser.Parse(body, _rules) as InvalidMessage;

    /// <summary>All or nothing: when any message is invalid none is queued, so fixing the input and publishing
    /// again cannot duplicate the valid ones.</summary>
    public async Task<PublishResult> PublishAsync(IReadOnlyList<string> bodies, CancellationToken cancellationToken)
    {
        List<OutgoingMessage> outgoing = new(bodies.Count);
        List<string> sends = [];
        List<PublishError> errors = [];
        for (var i = 0; i < bodies.Count; i++)
        {
            switch (MessageParser.Parse(bodies[i], _rules))
            {
                case InvalidMessage invalid:
                    errors.Add(new PublishError(i, invalid));
                    break;
                case SendRequest send:
                    var id = send.Email.Id ?? MessageIds.New();
                    outgoing.Add(new OutgoingMessage(id, bodies[i]));
                    sends.Add(id);
                    break;
                case RedriveRequest:
                    outgoing.Add(new OutgoingMessage(MessageIds.New(), bodies[i]));
                    break;
            }
        }
        if (errors.Count > 0)
            return new PublishResult([], errors);

        var enqueuedAt = time.GetUtcNow();
        await queue.EnqueueAsync(outgoing, cancellationToken);
        // The queue is the durable hand-off; the log's "queued" row only serves status queries, so a crash
        // between the two loses nothing (the worker records the message when it tries it).
        await log.RecordQueuedAsync(sends, enqueuedAt, cancellationToken);
        return new PublishResult(outgoing.ConvertAll(m => m.Id), []);
    }
}

public sealed record PublishResult(IReadOnlyList<string> Ids, IReadOnlyList<PublishError> Errors);

/// <summary>The message at <see cref="Index"/> (from 0) was refused.</summary>
public sealed record PublishError(int Index, InvalidMessage Error);
