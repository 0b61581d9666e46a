using Ion.Log;

namespace Ion.Delivery;

/// <summary>Which relay took an attempt: <c>Ion:Smtp</c>, or <c>Ion:Smtp:Fallback</c>.</summary>
public enum Relay
{
    Primary,
    Fallback,
}

/// <summary>
/// The relays ion sends through, each with its own circuit: the primary (<c>Ion:Smtp</c>), and the fallback
/// (<c>Ion:Smtp:Fallback</c>) when one is set, as Postfix's <c>fallback_relay</c>. Mail goes through the primary while
/// its circuit is closed; while it is open (the primary unreachable, or refusing ion itself) it goes through the
/// fallback, and the primary's probes go on meanwhile, so mail returns to the primary once it answers. A throttling
/// primary is not down: its circuit stays closed, and ion slows down instead (<see cref="SendRate"/>).
/// </summary>
/// <remarks>
/// Which recipients already have a message is the delivery log's (the recipients of <see cref="DeliveryHistory"/>),
/// whichever relay took them: a try through either relay goes only to those still pending, so nobody is sent a
/// message twice by going through both.
/// </remarks>
public sealed class Relays
{
    private readonly TimeProvider _time;
    private readonly int _afterDeferrals;

    public Relays(SmtpOptions options, DeliveryOptions delivery, TimeProvider time, Func<double> random)
    {
        ArgumentNullException.ThrowIfNull(options);
        _time = time;
        Primary = new RelayCircuit(time, delivery, random, Relay.Primary);
        Fallback = options.Fallback.IsSet ? new RelayCircuit(time, delivery, random, Relay.Fallback) : null;
        _afterDeferrals = options.Fallback.AfterDeferrals;
    }

    public RelayCircuit Primary { get; }

    /// <summary>Null without <c>Ion:Smtp:Fallback:Host</c>.</summary>
    public RelayCircuit? Fallback { get; }

    /// <summary>The circuit of <paramref name="relay"/>.</summary>
    public RelayCircuit this[Relay relay] => relay == Relay.Fallback
        ? Fallback ?? throw new InvalidOperationException("no fallback relay is configured (Ion:Smtp:Fallback:Host)")
        : Primary;

    /// <summary>Every relay ion has is down (or refuses ion): nothing can be sent now.</summary>
    public bool AllDown => Primary.IsOpen && (Fallback?.IsOpen ?? true);

    /// <summary>The name the log, the events, the metrics and health give <paramref name="relay"/>.</summary>
    public static string Name(Relay relay) => relay == Relay.Fallback ? "fallback" : "primary";

    /// <summary>Waits until the caller may send through one of the relays (<see cref="RelayPermit.Relay"/> says which):
    /// the primary when its circuit lets the caller through (a trial included), otherwise the fallback.</summary>
    public async Task<RelayPermit> WaitAsync(CancellationToken cancellationToken)
    {
        // Without a fallback, exactly the one circuit's wait, as before there was a fallback.
        if (Fallback is null)
            return await Primary.WaitAsync(cancellationToken);
        while (true)
        {
            if (TryEnter(out var wait, out var changed) is { } permit)
                return permit;
            using var waiting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            await Task.WhenAny([.. changed, Task.Delay(wait, _time, waiting.Token)]);
            await waiting.CancelAsync();
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>For a caller that cannot wait (the Lambda): leave to send now through one of the relays, or null and
    /// how long until a trial of either may go (<see cref="Timeout.InfiniteTimeSpan"/> while both trials are out).</summary>
    public RelayPermit? TryEnter(out TimeSpan wait) => TryEnter(out wait, out _);

    private RelayPermit? TryEnter(out TimeSpan wait, out Task[] changed)
    {
        // The primary first, its trials included: so it is probed while the fallback carries the mail, and has the mail
        // again as soon as it answers.
        var primary = Primary.TryEnter(out var primaryWait, out var primaryChanged);
        if (primary is not null || Fallback is null)
        {
            (wait, changed) = (primaryWait, [primaryChanged]);
            return primary;
        }
        var fallback = Fallback.TryEnter(out var fallbackWait, out var fallbackChanged);
        wait = primaryWait == Timeout.InfiniteTimeSpan ? fallbackWait
            : fallbackWait == Timeout.InfiniteTimeSpan ? primaryWait
            : TimeSpan.FromTicks(Math.Min(primaryWait.Ticks, fallbackWait.Ticks));
        changed = [primaryChanged, fallbackChanged];
        return fallback;
    }

    /// <summary>Leave to send one message of a batch taken under <paramref name="permit"/> through the other relay, or
    /// null to keep to the permit's: a message the relays deferred <c>Ion:Smtp:Fallback:AfterDeferrals</c> times goes
    /// through the fallback while the fallback is up; any other goes through the primary once its circuit is closed
    /// again (a batch taken while it was down need not finish on the fallback), and through the fallback once the
    /// primary's circuit opened under it. A trial keeps to its relay: it is there to try that relay.</summary>
    public RelayPermit? Divert(RelayPermit permit, DeliveryHistory history)
    {
        ArgumentNullException.ThrowIfNull(permit);
        ArgumentNullException.ThrowIfNull(history);
        if (Fallback is null || permit.IsTrial)
            return null;
        var fallbackUp = !Fallback.IsOpen;
        var wanted = _afterDeferrals > 0 && history.AttemptsUsed >= _afterDeferrals && fallbackUp ? Relay.Fallback
            : !Primary.IsOpen ? Relay.Primary
            : fallbackUp ? Relay.Fallback
            : permit.Relay;
        return wanted == permit.Relay ? null : new RelayPermit(isTrial: false, wanted);
    }
}

/// <summary>One slot's connections: one to each relay, opened when first used (a fallback that is never needed is
/// never connected to). Not thread-safe, as <see cref="SmtpSender"/>.</summary>
public sealed class RelaySenders(SmtpOptions options, TimeProvider time) : IAsyncDisposable
{
    private readonly SmtpSender _primary = new(options, time);
    private readonly SmtpSender? _fallback = options.Fallback.IsSet ? new SmtpSender(options.Fallback, time) : null;

    public SmtpSender this[Relay relay] => relay == Relay.Fallback
        ? _fallback ?? throw new InvalidOperationException("no fallback relay is configured (Ion:Smtp:Fallback:Host)")
        : _primary;

    /// <summary>Closes both connections; either opens again when next used.</summary>
    public async ValueTask DisposeAsync()
    {
        await _primary.DisposeAsync();
        if (_fallback is not null)
            await _fallback.DisposeAsync();
    }
}
