using Ion.Delivery;
using Microsoft.Extensions.Time.Testing;

namespace Ion.Tests.Delivery;

public class SendRateTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 9, 0, 0, TimeSpan.Zero));

    // A minute of 0.01/s is 0.6 permits, and of 0.025/s 1.5: no count is within 1 % of that. Windows of at least
    // 100 permits make 1 % worth one permit. 5,000 steps per window: 12 ms per step over a minute.
    [Theory]
    [InlineData(0.01, 10_000)]
    [InlineData(0.025, 4_000)]
    [InlineData(1, 100)]
    [InlineData(150, 60)]
    [InlineData(1_000, 60)]
    [InlineData(10_000, 60)]
    public async Task ConcurrentCallers_GetExactlyTheRate(double perSecond, int windowSeconds)
    {
        var rate = new SendRate(perSecond, _time);
        var window = TimeSpan.FromSeconds(windowSeconds);

        var granted = await CountWithCallers(rate, callers: 4, window, step: window / 5_000);

        var expected = perSecond * windowSeconds;
        Assert.InRange(granted, expected * 0.99, expected + 1);
    }

    [Fact]
    public async Task Rate150_SendsAt150PerSecond_Not200()
    {
        // The token bucket refilled round(150 × 10 ms) = 2 tokens every 10 ms: 200/s. Let callers go every 10 ms too.
        var rate = new SendRate(150, _time);

        var granted = await CountPolling(rate, TimeSpan.FromMinutes(1), every: TimeSpan.FromMilliseconds(10));

        Assert.InRange(granted, 150 * 60 * 0.99, 150 * 60 + 1);
    }

    [Fact]
    public async Task CallersWokenLate_CatchUp_BecauseSlotsAreAbsolute()
    {
        // 10,000/s is 100 slots per 10 ms look: a timer ten or a hundred times coarser than 1/rate loses nothing.
        var rate = new SendRate(10_000, _time);

        var granted = await CountPolling(rate, TimeSpan.FromMinutes(1), every: TimeSpan.FromMilliseconds(10));

        Assert.InRange(granted, 600_000 * 0.99, 600_001);
    }

    // A pause longer than the 20 ms the schedule may lag for late timers is idleness, at any rate.
    [Theory]
    [InlineData(10, 600_000)]
    [InlineData(1_000, 50)]
    public async Task AfterIdle_NoBurst_OnlyOneGoesAtOnce(double perSecond, int idleMilliseconds)
    {
        var rate = new SendRate(perSecond, _time);
        var slot = TimeSpan.FromSeconds(1 / perSecond);
        for (var i = 0; i < 20; i++)
        {
            var wait = rate.WaitAsync(TestContext.Current.CancellationToken);
            _time.Advance(slot);
            await wait;
        }

        _time.Advance(TimeSpan.FromMilliseconds(idleMilliseconds));
        var waits = Enumerable.Range(0, 5).Select(_ => rate.WaitAsync(TestContext.Current.CancellationToken).AsTask()).ToList();

        Assert.Equal(1, waits.Count(w => w.IsCompleted));
        _time.Advance(slot / 2);
        Assert.Equal(1, waits.Count(w => w.IsCompleted));
        _time.Advance(slot / 2);
        Assert.Equal(2, waits.Count(w => w.IsCompleted));
        _time.Advance(slot * 3);
        Assert.All(waits, w => Assert.True(w.IsCompletedSuccessfully));
    }

    [Fact]
    public void CallersOnManyThreads_EachGetTheirOwnSlot()
    {
        var rate = new SendRate(10, _time);
        var waits = new Task[400];

        Parallel.For(0, waits.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 },
            i => waits[i] = rate.WaitAsync(TestContext.Current.CancellationToken).AsTask());

        Assert.Equal(1, waits.Count(w => w.IsCompleted));
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(101, waits.Count(w => w.IsCompletedSuccessfully));
    }

    [Fact]
    public void Unlimited_ReturnsAtOnce()
    {
        var rate = new SendRate(SendRate.Unlimited, _time);

        for (var i = 0; i < 100_000; i++)
            Assert.True(rate.WaitAsync(TestContext.Current.CancellationToken).AsTask().IsCompletedSuccessfully);
        Assert.Null(rate.CurrentPerSecond);
        Assert.False(rate.IsThrottled);
        Assert.Null(rate.LastThrottledAt);
    }

    [Fact]
    public void Throttled_HalvesTheLimit_AndShowsIt()
    {
        var rate = new SendRate(100, _time);

        rate.OnThrottled();

        Assert.Equal(50, rate.CurrentPerSecond);
        Assert.True(rate.IsThrottled);
        Assert.Equal(_time.GetUtcNow(), rate.LastThrottledAt);
    }

    [Fact]
    public void ThrottlesArrivingTogether_HalveOnce_ThenASecondLaterAgain()
    {
        var rate = new SendRate(100, _time);

        for (var i = 0; i < 8; i++)
        {
            rate.OnThrottled();
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }
        Assert.Equal(50, rate.CurrentPerSecond);
        Assert.Equal(_time.GetUtcNow() - TimeSpan.FromMilliseconds(100), rate.LastThrottledAt);

        _time.Advance(TimeSpan.FromMilliseconds(200));
        rate.OnThrottled();
        Assert.Equal(25, rate.CurrentPerSecond);
    }

    [Fact]
    public void Throttled_NeverBelowTheFloor()
    {
        var rate = new SendRate(1, _time);

        for (var i = 0; i < 20; i++)
        {
            rate.OnThrottled();
            _time.Advance(TimeSpan.FromSeconds(100));
        }

        Assert.Equal(SendRate.MinPerSecond, rate.CurrentPerSecond);
    }

    [Fact]
    public async Task Throttled_SpacesTheNextSlotsByTheNewLimit()
    {
        var rate = new SendRate(100, _time);
        await SendSteadily(rate, perSecond: 100, TimeSpan.FromSeconds(2));   // the last at 1.99 s; now 2 s

        rate.OnThrottled();
        var next = rate.WaitAsync(TestContext.Current.CancellationToken).AsTask();

        // 50/s: 20 ms after the last one.
        _time.Advance(TimeSpan.FromMilliseconds(9));
        Assert.False(next.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(next.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task ThrottledWhileSendingBelowTheLimit_HalvesWhatWasSent()
    {
        // 1,000/s configured but 20/s sent: halving 1,000 would not slow anything down.
        var rate = new SendRate(1_000, _time);
        await SendSteadily(rate, perSecond: 20, TimeSpan.FromSeconds(5));

        rate.OnThrottled();

        Assert.Equal(10, rate.CurrentPerSecond!.Value, 0.5);
    }

    [Fact]
    public void Successes_GrowTheLimitAdditively_NeverAboveTheConfiguredRate()
    {
        var rate = new SendRate(120, _time);
        rate.OnThrottled();

        // One second's worth of successes at 60/s adds 1/60 of the configured rate: 2/s.
        for (var i = 0; i < 60; i++)
            rate.OnSent();
        Assert.Equal(62, rate.CurrentPerSecond!.Value, 0.05);

        // Back to 120/s after about 30 s of sending at the limit (about 90/s × 30 s = 2,700 successes), and no higher.
        var sent = 60;
        while (rate.IsThrottled)
        {
            rate.OnSent();
            sent++;
        }
        Assert.InRange(sent, 2_600, 2_800);
        for (var i = 0; i < 1_000; i++)
            rate.OnSent();
        Assert.Equal(120, rate.CurrentPerSecond);
    }

    [Fact]
    public async Task Unlimited_Throttled_GrowsBack_ThenUnlimitedAgain()
    {
        var rate = new SendRate(SendRate.Unlimited, _time);
        await SendSteadily(rate, perSecond: 100, TimeSpan.FromSeconds(3));

        rate.OnThrottled();
        Assert.Equal(50, rate.CurrentPerSecond!.Value, 1);
        Assert.True(rate.IsThrottled);

        // It grows past the throttled rate (still limited: the relay may complain again) to twice it, then lets go:
        // about 90 s of sending at a limit from 50/s to 200/s.
        var peak = 0.0;
        var sent = 0;
        while (rate.CurrentPerSecond is { } limit)
        {
            peak = limit;
            rate.OnSent();
            sent++;
        }
        Assert.InRange(peak, 199, 200);
        Assert.InRange(sent, 10_500, 12_000);
        Assert.False(rate.IsThrottled);
        Assert.True(rate.WaitAsync(TestContext.Current.CancellationToken).AsTask().IsCompletedSuccessfully);
    }

    [Fact]
    public void Unlimited_ThrottledWithNothingSent_StartsFromACautiousRate()
    {
        var rate = new SendRate(SendRate.Unlimited, _time);

        rate.OnThrottled();

        Assert.Equal(0.5, rate.CurrentPerSecond);
    }

    [Fact]
    public async Task Cancelled_ThrowsAtOnce_AndGivesTheSlotBack()
    {
        var rate = new SendRate(1, _time);
        await rate.WaitAsync(TestContext.Current.CancellationToken);
        using var cancel = new CancellationTokenSource();
        var cancelled = rate.WaitAsync(cancel.Token).AsTask();

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        var next = rate.WaitAsync(TestContext.Current.CancellationToken).AsTask();
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(next.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Cancelled_BehindALaterSlot_LeavesItEmpty()
    {
        var rate = new SendRate(1, _time);
        await rate.WaitAsync(TestContext.Current.CancellationToken);
        using var cancel = new CancellationTokenSource();
        var cancelled = rate.WaitAsync(cancel.Token).AsTask();
        var later = rate.WaitAsync(TestContext.Current.CancellationToken).AsTask();

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(later.IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(later.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task AlreadyCancelled_Throws()
    {
        var rate = new SendRate(SendRate.Unlimited, _time);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => rate.WaitAsync(new CancellationToken(canceled: true)).AsTask());
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(0.005)]
    [InlineData(10_001)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void ConfiguredRate_OutsideTheBounds_IsRejected(double perSecond)
    {
        Assert.False(SendRate.IsValid(perSecond));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SendRate(perSecond, _time));
    }

    [Theory]
    [InlineData(SendRate.Unlimited)]
    [InlineData(SendRate.MinPerSecond)]
    [InlineData(SendRate.MaxPerSecond)]
    public void ConfiguredRate_AtTheBounds_IsAccepted(double perSecond)
    {
        Assert.True(SendRate.IsValid(perSecond));
        Assert.Equal(perSecond == 0 ? null : perSecond, new SendRate(perSecond, _time).CurrentPerSecond);
    }

    // Callers that each take permits in a loop while the clock advances in steps. FakeTimeProvider.Advance moves the
    // clock, then runs the due timers' callbacks inline: callers wake up to a step late, as with a coarse timer, and the
    // run is deterministic. Counts the permits after the first one, granted at the start: the slots in
    // (start, start + window]. Whole-millisecond steps, since Task.Delay counts whole milliseconds.
    private async Task<long> CountWithCallers(SendRate rate, int callers, TimeSpan window, TimeSpan step)
    {
        using var stop = new CancellationTokenSource();
        long granted = 0;
        var loops = Enumerable.Range(0, callers).Select(_ => TakeAsync()).ToList();
        Assert.Equal(1, granted);

        var end = _time.GetUtcNow() + window;
        while (_time.GetUtcNow() + step < end)
            _time.Advance(step);
        _time.SetUtcNow(end);

        await stop.CancelAsync();
        foreach (var loop in loops)
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => loop);
        return granted - 1;

        async Task TakeAsync()
        {
            while (true)
            {
                await rate.WaitAsync(stop.Token);
                granted++;
            }
        }
    }

    // One caller that only looks every so often, as a coarse timer would wake it: each time it takes every slot due.
    private async Task<long> CountPolling(SendRate rate, TimeSpan window, TimeSpan every)
    {
        long granted = -1;   // the first slot, at the start
        var end = _time.GetUtcNow() + window;
        while (true)
        {
            Task wait;
            while ((wait = rate.WaitAsync(TestContext.Current.CancellationToken).AsTask()).IsCompletedSuccessfully)
                granted++;
            if (_time.GetUtcNow() >= end)
                return granted;   // the pending slot is after the window: it doesn't count
            _time.Advance(every);
            await wait;
            granted++;
        }
    }

    private async Task SendSteadily(SendRate rate, double perSecond, TimeSpan duration)
    {
        var gap = TimeSpan.FromSeconds(1 / perSecond);
        for (var sent = 0; sent < duration / gap; sent++)
        {
            await rate.WaitAsync(TestContext.Current.CancellationToken);
            _time.Advance(gap);
        }
    }
}
