namespace Ion.Delivery;

/// <summary>
/// Whether the relay is usable: a circuit breaker whose probe is a real delivery. Closed: every slot sends. Open
/// (the relay is unreachable, or refuses ion itself): slots wait and no message spends an attempt; after a pause
/// that grows with each failed probe, one slot is let through with one message (half-open). If the relay answers
/// for the message, whatever it says, the circuit closes; if it answers for itself again, it stays open.
/// </summary>
/// <remarks>
/// When the relay refused ion itself, the probe is a delivery, not a connect-and-EHLO, because a relay can take the
/// connection and EHLO and still refuse every message (530 "must issue STARTTLS first", relaying denied): a connect
/// probe would close the circuit on such a relay and the same messages would go round forever. When the relay could
/// not be reached at all, connecting is the test, and no message need leave the queue for it
/// (<see cref="NeedsAMessageToProbe"/>).
/// </remarks>
public sealed class RelayCircuit(TimeProvider time, DeliveryOptions options, Func<double> random, Relay relay = Relay.Primary)
{
    private readonly Lock _lock = new();
    private TaskCompletionSource _changed = NewSignal();
    private bool _trialOut;
    private int _probes;
    private long _nextTrialAt;

    /// <summary>Which relay this circuit stands for; its permits say so too.</summary>
    public Relay Relay { get; } = relay;

    public bool IsOpen { get; private set; }
    /// <summary>The relay's last answer about itself, while open.</summary>
    public SmtpAnswer? LastAnswer { get; private set; }
    public DateTimeOffset? OpenedAt { get; private set; }

    /// <summary>Whether a trial must be a real delivery (the relay refused ion itself) rather than a connection (the
    /// relay could not be reached).</summary>
    public bool NeedsAMessageToProbe
    {
        get
        {
            lock (_lock)
                return LastAnswer?.Kind != OutcomeKind.RelayUnavailable;
        }
    }

    /// <summary>Waits until the caller may send: the circuit is closed, or it is open, the pause is over, and the caller
    /// is the one let through to try (<see cref="RelayPermit.IsTrial"/>).</summary>
    public async Task<RelayPermit> WaitAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TryEnter(out var wait, out var changed) is { } permit)
                return permit;
            using var waiting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            await Task.WhenAny(changed, Task.Delay(wait, time, waiting.Token));
            await waiting.CancelAsync();
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>For a caller that cannot wait (the Lambda): leave to send now, or null and how long until a trial may
    /// go (<see cref="Timeout.InfiniteTimeSpan"/> while another caller's trial is out).</summary>
    public RelayPermit? TryEnter(out TimeSpan wait) => TryEnter(out wait, out _);

    /// <summary><see cref="TryEnter(out TimeSpan)"/>, and what completes when the circuit changes next, taken together so
    /// that a change between the two is not missed (see <see cref="Relays.WaitAsync"/>).</summary>
    internal RelayPermit? TryEnter(out TimeSpan wait, out Task changed)
    {
        lock (_lock)
        {
            changed = _changed.Task;
            return Enter(out wait);
        }
    }

    private RelayPermit? Enter(out TimeSpan wait)
    {
        wait = TimeSpan.Zero;
        if (!IsOpen)
            return new RelayPermit(isTrial: false, Relay);
        var now = time.GetTimestamp();
        if (!_trialOut && now >= _nextTrialAt)
        {
            _trialOut = true;
            return new RelayPermit(isTrial: true, Relay);
        }
        wait = _trialOut ? Timeout.InfiniteTimeSpan : time.GetElapsedTime(now, _nextTrialAt);
        return null;
    }

    /// <summary>Whether a slot holding <paramref name="permit"/> may go on sending: the circuit is closed, or the permit
    /// is the trial.</summary>
    public bool Allows(RelayPermit permit)
    {
        ArgumentNullException.ThrowIfNull(permit);
        lock (_lock)
            return !IsOpen || permit.IsTrial;
    }

    /// <summary>The relay answered for a message (sent, or refused the message itself): it works. A trial closes the
    /// circuit; a slot that was mid-send when another opened it leaves the decision to the trial.</summary>
    public void Succeeded(RelayPermit permit)
    {
        ArgumentNullException.ThrowIfNull(permit);
        if (!permit.Settle())
            return;
        lock (_lock)
        {
            if (!permit.IsTrial || !IsOpen)
                return;
            IsOpen = false;
            _trialOut = false;
            _probes = 0;
            LastAnswer = null;
            OpenedAt = null;
            Signal();
        }
    }

    /// <summary>The relay answered for itself (unreachable, refuses ion): open the circuit, or keep it open with a
    /// longer pause when this was the trial.</summary>
    public void Failed(RelayPermit permit, SmtpAnswer answer)
    {
        ArgumentNullException.ThrowIfNull(permit);
        ArgumentNullException.ThrowIfNull(answer);
        permit.Settle();
        lock (_lock)
        {
            LastAnswer = answer;
            if (IsOpen && !permit.IsTrial)
                return;
            if (!IsOpen)
            {
                IsOpen = true;
                OpenedAt = time.GetUtcNow();
            }
            _trialOut = false;
            _probes++;
            var pause = RetrySchedule.Delay(_probes, options.RelayProbeBaseDelay, options.RelayProbeMaxDelay, random());
            _nextTrialAt = time.GetTimestamp() + (long)(pause.TotalSeconds * time.TimestampFrequency);
            Signal();
        }
    }

    /// <summary>A permit that was not used to learn anything (nothing to send, the slot stopped): if it was the trial,
    /// the next caller tries instead.</summary>
    public void Abandon(RelayPermit permit)
    {
        ArgumentNullException.ThrowIfNull(permit);
        if (!permit.Settle() || !permit.IsTrial)
            return;
        lock (_lock)
        {
            _trialOut = false;
            Signal();
        }
    }

    private void Signal() => Interlocked.Exchange(ref _changed, NewSignal()).TrySetResult();

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>Leave to send from <see cref="RelayCircuit.WaitAsync"/>. A trial must be settled once: succeeded, failed or
/// abandoned.</summary>
public sealed class RelayPermit(bool isTrial, Relay relay = Relay.Primary)
{
    private int _settled;

    public static RelayPermit Normal => new(isTrial: false);

    public bool IsTrial { get; } = isTrial;

    /// <summary>The relay whose circuit gave it: the one the slot sends through.</summary>
    public Relay Relay { get; } = relay;

    /// <summary>True the first time only.</summary>
    internal bool Settle() => Interlocked.Exchange(ref _settled, 1) == 0;
}
