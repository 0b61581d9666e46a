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

    // Replies relays really give, as they give them. The ones with no delay in them must say nothing, however many
    // numbers they hold (codes, addresses, Outlook's "(S77714)", Yahoo's "4.16.55.1").
    [Theory]
    // Exim and Postfix greylisting policies
    [InlineData("451 4.7.1 Greylisted, please try again in 300 seconds", 300)]
    [InlineData("451-4.7.1 Try again in 5 minutes", 300)]
    [InlineData("450 4.7.1 Client host rejected: greylisted, retry after 120s", 120)]
    // postgrey with Debian's --greylist-text="Greylisted for %s seconds", and its default text (no delay)
    [InlineData("450 4.2.0 <ann@example.com>: Recipient address rejected: Greylisted for 293 seconds", 293)]
    [InlineData("450 4.2.0 <ann@example.com>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html", null)]
    // Gmail
    [InlineData("451 4.7.1 Greylisting in action, please come back later", null)]
    [InlineData("450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered. Please resend your message at a later time.", null)]
    [InlineData("421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited.", null)]
    // Outlook / Microsoft 365
    [InlineData("451 4.7.500 Server busy. Please try again later from [203.0.113.7]. (S77714) [BN8NAM12FT.eop-nam12.prod.protection.outlook.com]", null)]
    [InlineData("421 RP-001 (BAY004-MC1F2) Unfortunately, some messages from 203.0.113.7 weren't sent. Please try again. We have limits for how many messages can be sent per hour and per day.", null)]
    // Amazon SES
    [InlineData("454 Throttling failure: Maximum sending rate exceeded.", null)]
    [InlineData("454 4.7.0 Temporary service failure", null)]
    // Yahoo
    [InlineData("421 4.7.0 [TSS04] Messages from 203.0.113.7 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes", null)]
    // Others that give a delay
    [InlineData("421 4.7.0 Too many connections, wait 60 secs", 60)]
    [InlineData("452 4.3.1 Insufficient system resources, retry in 2 hours", 7200)]
    [InlineData("451 4.7.1 Service unavailable - try again in 10 min", 600)]
    [InlineData("451 4.3.0 Try again later", null)]
    [InlineData("", null)]
    [InlineData(null, null)]
    public void Hint_ReadsTheDelayARelayAsksFor_AndNothingElse(string? reply, int? expectedSeconds)
    {
        Assert.Equal(expectedSeconds is { } s ? TimeSpan.FromSeconds(s) : null, RetrySchedule.Hint(reply));
    }

    [Theory]
    [InlineData("451 4.7.1 Greylisted, please try again in 300 seconds", 1, 300)]   // inside [30 s, 1 h]: followed
    [InlineData("451 4.7.1 Greylisted, please try again in 300 seconds", 7, 300)]   // even where backoff would wait an hour
    [InlineData("451 4.7.1 Try again in 5 seconds", 1, 30)]                          // under the base: the usual backoff
    [InlineData("451 4.7.1 Try again in 3 hours", 2, 60)]                            // over the cap: the usual backoff
    [InlineData("451 4.7.1 Try again later", 2, 60)]                                 // no hint
    public void Delay_FollowsAHint_OnlyBetweenTheBaseAndTheCap(string reply, int attempt, int expectedSeconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(expectedSeconds), RetrySchedule.Delay(attempt, Base, Cap, 1.0, [reply]));
    }

    [Fact]
    public void Delay_TakesTheLongestHint_AsTheNextAttemptMustSatisfyEveryRecipient()
    {
        Assert.Equal(TimeSpan.FromMinutes(10), RetrySchedule.Delay(1, Base, Cap, 1.0,
            ["451 4.7.1 try again in 60 seconds", null, "450 4.2.0 Greylisted for 600 seconds", "451 try again later"]));
    }
}
