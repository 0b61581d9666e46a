using Ion.Delivery;
using Ion.Queues;
using Ion.Stores.Aws;

namespace Ion.Lambda;

/// <summary>
/// The queue as the Lambda's delivery sees it: SQS itself (<see cref="SqsQueue"/>), plus what the invocation must
/// answer. A record is left out of the batch's failures only once SQS has let go of it for good — deleted as done, or
/// moved to the dead-letter queue; everything else (retried, given back, let go, or a call that failed) is reported
/// as a failure, so Lambda's event source never deletes a message ion did not finish.
/// </summary>
public sealed class InvocationQueue(SqsQueue sqs, Relays relays, LambdaOptions options) : IMessageQueue
{
    private readonly HashSet<string> _settled = new(StringComparer.Ordinal);

    /// <summary>Starts an invocation's bookkeeping.</summary>
    public void Begin()
    {
        lock (_settled)
            _settled.Clear();
    }

    public bool Settled(string queueMessageId)
    {
        lock (_settled)
            return _settled.Contains(queueMessageId);
    }

    public async Task CompleteAsync(IReadOnlyList<QueuedMessage> messages, CancellationToken cancellationToken)
    {
        await sqs.CompleteAsync(messages, cancellationToken);
        Settle(messages);
    }

    public async Task DeadLetterAsync(QueuedMessage message, DeadLetterNote note, CancellationToken cancellationToken)
    {
        await sqs.DeadLetterAsync(message, note, cancellationToken);
        Settle([message]);
    }

    public Task ReturnAsync(IReadOnlyList<QueuedMessage> messages, TimeSpan delay, CancellationToken cancellationToken) =>
        sqs.ReturnAsync(messages, HandBackDelay(delay), cancellationToken);

    /// <summary>How long a message given back waits: while the relay is down (the circuit is open; with a fallback, both
    /// circuits) at least <see cref="LambdaOptions.RelayDownDelay"/>, since given back at once Lambda would hand it
    /// straight back, and every receive counts towards the redrive policy's maxReceiveCount. With the fallback up, it
    /// may go again at once: through the fallback.</summary>
    public TimeSpan HandBackDelay(TimeSpan delay) => relays.AllDown && delay < options.RelayDownDelay ? options.RelayDownDelay : delay;

    private void Settle(IEnumerable<QueuedMessage> messages)
    {
        lock (_settled)
        {
            foreach (var message in messages)
                _settled.Add(message.QueueMessageId);
        }
    }

    public Task<IReadOnlyList<EnqueueResult>> EnqueueAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken) =>
        sqs.EnqueueAsync(messages, cancellationToken);

    public Task<IReadOnlyList<QueuedMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken) =>
        throw new NotSupportedException("the Lambda does not receive: its event source hands it the messages");

    public Task<IReadOnlyList<bool>> KeepHiddenAsync(IReadOnlyList<QueuedMessage> messages, CancellationToken cancellationToken) =>
        sqs.KeepHiddenAsync(messages, cancellationToken);

    public Task<IReadOnlyList<string>> RedriveAsync(IReadOnlyCollection<string>? ids, CancellationToken cancellationToken) =>
        sqs.RedriveAsync(ids, cancellationToken);

    public Task<QueueCounts> CountAsync(CancellationToken cancellationToken) => sqs.CountAsync(cancellationToken);

    public MessageSizeLimit? SizeLimit => sqs.SizeLimit;
}
