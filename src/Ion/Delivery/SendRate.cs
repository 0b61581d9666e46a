namespace Ion.Delivery;

/// <summary>
/// The pace of sends to the relay, shared by all connections of one process: exactly the configured rate, or less while
/// the relay answers "too fast". No timers or threads of its own: callers wait for their slot.
/// </summary>
/// <remarks>
/// The limit is virtual scheduling, the Generic Cell Rate Algorithm (ITU-T I.371, ATM Forum TM 4.0) with no burst
/// tolerance beyond timer lateness: each permit gets the slot previous slot + 1/limit, or now if that is long past. Slots
/// are absolute, so callers their timer wakes late lose nothing: they find their slots already due and go at once, and
/// the count over a minute is exact however coarse the timer is next to 1/rate. The token bucket this replaces rounded tokens per 10 ms refill
/// (150/s sent 200/s). No credit is kept while idle: a schedule more than 20 ms behind the clock starts again from now.
/// So slots are never closer than 1/limit, at most 20 ms' worth of them go at once (after a shorter pause), and below
/// 50/s, where a slot is longer than that, there is no burst at all.
/// The relay's own limit is found with additive increase / multiplicative decrease, as in TCP congestion avoidance
/// (Chiu and Jain 1989; RFC 5681 §3.1): halve on a throttle reply, grow linearly while sends succeed.
/// </remarks>
public sealed class SendRate
{
    /// <summary>The lowest rate that can be configured (one message per 100 s); throttling never goes below it either.</summary>
    public const double MinPerSecond = 0.01;
    /// <summary>The highest rate that can be configured; above it, configure <see cref="Unlimited"/>.</summary>
    public const double MaxPerSecond = 10_000;
    /// <summary>The configured rate that means no limit until the relay throttles.</summary>
    public const double Unlimited = 0;

    // Timers wake late: Task.Delay counts whole milliseconds (rounded up below, so nobody goes before its slot), the OS
    // timer ticks every 1 ms (Linux) to 15.6 ms (Windows), and the thread pool may be busy. A schedule less than this
    // behind the clock is taken as such lateness and its slots are still handed out, at once. Else a caller woken late
    // would restart the schedule from now and the slots in between would be lost: four callers woken every 12 ms sent
    // 417/s whether the limit was 1,000/s or 10,000/s. Further behind, nobody asked for those slots (idle, or the
    // senders were the bottleneck): start from now.
    private static readonly TimeSpan CatchUp = TimeSpan.FromMilliseconds(20);

    private const double DecreaseFactor = 0.5;
    // Per second of sending at the limit, the limit grows by this share of the reference rate (the configured one, or
    // the rate that was throttled when unlimited): a halving is regained in 30 s of sending, whatever the rate.
    private const double GrowthPerSecond = 1.0 / 60;
    // Unlimited again once the limit is this far past the rate the relay throttled without another complaint.
    private const double LiftFactor = 2;
    // The rate to halve when unlimited and nothing was sent in the last second or two: a cautious guess.
    private const double UnknownPerSecond = 1;

    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly double _configured;   // per second; +∞ when unlimited
    private readonly long _second;         // timestamp units per second
    private readonly long _catchUp;        // CatchUp in timestamp units

    // The current limit (+∞ when unlimited) and the slot spacing in timestamp units (0 when unlimited): written under
    // _lock, read without it by the fast paths.
    private double _limit;
    private double _interval;

    // The schedule: the slots of the current run are _runStart + i × _interval, i < _runPermits. Each slot is one
    // multiplication from the run's start, not a sum of 600,000 rounded additions (10,000/s for a minute). A run starts
    // again when the schedule falls CatchUp behind the clock (idle) and when the limit changes. _run tells a cancelled
    // caller whether its slot is still the last one handed out.
    private long _runStart;
    private long _runPermits;
    private long _run;

    // Permits handed out lately, in buckets of about a second, for the rate to halve when throttled. The unlimited path
    // counts with Interlocked and takes the lock only to start a new bucket, once a second.
    private long _bucketStart;
    private long _bucketCount;
    private long _previousStart;
    private long _previousCount;

    private long _holdUntil = long.MinValue;   // throttle replies before this belong to the last decrease
    private double _throttledRate;             // what was halved last: the reference for regrowth when unlimited
    private DateTimeOffset? _lastThrottledAt;

    public SendRate(double configuredPerSecond, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        if (!IsValid(configuredPerSecond))
            throw new ArgumentOutOfRangeException(nameof(configuredPerSecond), configuredPerSecond,
                $"The send rate must be {Unlimited} (unlimited) or from {MinPerSecond} to {MaxPerSecond} per second.");
        _time = time;
        _second = time.TimestampFrequency;
        _catchUp = (long)(CatchUp.TotalSeconds * _second);
        _configured = configuredPerSecond == Unlimited ? double.PositiveInfinity : configuredPerSecond;
        _limit = _configured;
        _interval = double.IsFinite(_configured) ? _second / _configured : 0;
        _runStart = _bucketStart = _previousStart = time.GetTimestamp();
    }

    /// <summary>0 (<see cref="Unlimited"/>) or from <see cref="MinPerSecond"/> to <see cref="MaxPerSecond"/>.</summary>
    public static bool IsValid(double perSecond) => perSecond is Unlimited or (>= MinPerSecond and <= MaxPerSecond);

    /// <summary>The limit now, per second; null when unlimited.</summary>
    public double? CurrentPerSecond => Volatile.Read(ref _limit) is var limit && double.IsFinite(limit) ? limit : null;

    /// <summary>Below the configured rate because the relay throttled.</summary>
    public bool IsThrottled => Volatile.Read(ref _limit) < _configured;

    /// <summary>When the relay last said "too fast", whether or not that reply decreased the limit.</summary>
    public DateTimeOffset? LastThrottledAt
    {
        get
        {
            lock (_lock)
                return _lastThrottledAt;
        }
    }

    /// <summary>Waits for this caller's send slot. Cancelled, the slot is given back if no later one was handed out
    /// meanwhile; otherwise it stays empty (one interval lost: the rate only ever errs low).</summary>
    public ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
            return ValueTask.FromCanceled(cancellationToken);
        if (Volatile.Read(ref _interval) == 0)
        {
            Count(_time.GetTimestamp());
            return ValueTask.CompletedTask;
        }

        long now, run, permit;
        double due;
        lock (_lock)
        {
            now = _time.GetTimestamp();
            var slot = _runPermits * _interval;
            if (now - _runStart - slot > _catchUp)
            {
                // Idle: start again from now. Keeping the old schedule would hand the idle time out as a burst.
                (_runStart, _runPermits, slot) = (now, 0, 0);
                _run++;
            }
            permit = _runPermits++;
            run = _run;
            due = slot - (now - _runStart);
        }
        Count(now);
        return due <= 0 ? ValueTask.CompletedTask : new ValueTask(DelayAsync(due, run, permit, cancellationToken));
    }

    /// <summary>The relay said "too fast": halve the limit, or the rate actually sent if lower; once for replies
    /// arriving together.</summary>
    public void OnThrottled()
    {
        lock (_lock)
        {
            _lastThrottledAt = _time.GetUtcNow();
            var now = _time.GetTimestamp();
            // Replies to sends made before the decrease keep coming for a round trip or so, from every connection: they
            // are the same news. TCP likewise halves once per window of data, not once per lost segment.
            if (now < _holdUntil)
                return;

            // Halve what was actually sent, not a limit the senders never reached: after a quiet spell, 1,000/s halved to
            // 500/s would not slow 20/s of sends at all (RFC 7661 keeps TCP's window from growing unused for the same reason).
            var rate = ObservedPerSecond(now) is { } observed ? Math.Min(_limit, observed) : _limit;
            rate = double.IsFinite(rate) ? Math.Min(rate, MaxPerSecond) : UnknownPerSecond;
            _throttledRate = rate;
            SetLimit(Math.Max(MinPerSecond, rate * DecreaseFactor), now);
            _holdUntil = now + (long)Math.Max(_second, _second / _limit);
        }
    }

    /// <summary>A send succeeded: grow the limit back toward the configured rate (additive increase).</summary>
    public void OnSent()
    {
        if (!IsThrottled)
            return;
        lock (_lock)
        {
            if (!(_limit < _configured))
                return;
            // A success at the limit stands for 1/limit seconds of sending, so adding GrowthPerSecond × reference / limit
            // per success grows the limit by GrowthPerSecond × reference per second of sending at it: TCP adds one segment
            // per round trip by adding 1/cwnd per ACK. Sending below the limit grows it more slowly, as it should: such
            // sends say less about where the relay's limit is.
            var reference = double.IsFinite(_configured) ? _configured : _throttledRate;
            var limit = _limit + GrowthPerSecond * reference / _limit;
            if (!double.IsFinite(_configured) && limit >= LiftFactor * _throttledRate)
                limit = double.PositiveInfinity;
            SetLimit(Math.Min(limit, _configured), _time.GetTimestamp());
        }
    }

    private async Task DelayAsync(double due, long run, long permit, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(due * 1000 / _second)), _time, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            lock (_lock)
            {
                if (run == _run && permit == _runPermits - 1)
                    _runPermits--;
            }
            throw;
        }
    }

    // Under _lock.
    private void SetLimit(double perSecond, long now)
    {
        if (perSecond == _limit)
            return;
        if (_interval == 0)
            (_runStart, _runPermits) = (now, 0);
        else if (_runPermits > 0)
        {
            // Keep the last slot handed out; the next one comes an interval of the new limit after it. Rounding the start
            // up keeps the new schedule from ever running early.
            _runStart += (long)Math.Ceiling((_runPermits - 1) * _interval);
            _runPermits = 1;
        }
        _run++;
        Volatile.Write(ref _limit, perSecond);
        Volatile.Write(ref _interval, double.IsFinite(perSecond) ? _second / perSecond : 0);
    }

    private void Count(long now)
    {
        if (now - Volatile.Read(ref _bucketStart) >= _second)
        {
            lock (_lock)
                Roll(now);
        }
        Interlocked.Increment(ref _bucketCount);
    }

    // Under _lock. Permits per second over the last one to two seconds, null if none; over at least a second, so that a
    // couple of permits close together don't read as a high rate.
    private double? ObservedPerSecond(long now)
    {
        Roll(now);
        var count = _previousCount + Interlocked.Read(ref _bucketCount);
        return count == 0 ? null : count * (double)_second / Math.Max(now - _previousStart, _second);
    }

    // Under _lock.
    private void Roll(long now)
    {
        var age = now - _bucketStart;
        if (age < _second)
            return;
        var count = Interlocked.Exchange(ref _bucketCount, 0);
        // A bucket that ended over a second ago (the senders were idle since) says nothing about the rate now.
        (_previousStart, _previousCount) = age < 2 * _second ? (_bucketStart, count) : (now, 0);
        Volatile.Write(ref _bucketStart, now);
    }
}
