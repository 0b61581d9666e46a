using Ion.Delivery;

namespace Ion.Tests.Delivery;

public class RetryScheduleTests
{
    private static readonly TimeSpan Base = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Cap = TimeSpan.FromHours(1);

    [Theory]
    [InlineData(1, 0.0, 15)]
    [InlineData(1, 1.0, 30)]
    [InlineData(2, 1.0, 60)]
    [InlineData(3, 0.5, 90)]        // d = 120 s; 60 + 60 * 0.5
    [InlineData(5, 1.0, 480)]
    [InlineData(8, 1.0, 3600)]      // 30 * 2^7 = 3840 s, capped at one hour
    [InlineData(8, 0.0, 1800)]
    [InlineData(1000, 1.0, 3600)]   // no overflow however many attempts
    public void Delay_DoublesFromTheBase_WithEqualJitter_UpToTheCap(int attempt, double random, double expectedSeconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(expectedSeconds), RetrySchedule.Delay(attempt, Base, Cap, random));
    }

    [Fact]
    public void Delay_GrowsWithAttempts_ForTheSameRandomDraw()
    {
        var delays = Enumerable.Range(1, 10).Select(a => RetrySchedule.Delay(a, Base, Cap, 0.3)).ToList();

        Assert.Equal(delays.Order(), delays);
        Assert.All(delays, d => Assert.InRange(d, Base / 2, Cap));
    }

    [Fact]
    public void Delay_RejectsAttemptZero()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RetrySchedule.Delay(0, Base, Cap, 0.5));
    }
}
