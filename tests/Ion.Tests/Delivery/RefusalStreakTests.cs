using Ion.Delivery;

namespace Ion.Tests.Delivery;

public class RefusalStreakTests
{
    private static readonly SmtpAnswer Blocked = SmtpOutcomes.Classify(554, "5.7.1 Service unavailable", SmtpStage.RcptTo);
    private static readonly SmtpAnswer NoSuchUser = SmtpOutcomes.Classify(550, "5.1.1 No such user", SmtpStage.RcptTo);

    private static DeliveryOutcome Refusal(string recipient, SmtpAnswer answer) => new(answer, [new RecipientAnswer(recipient, answer)]);

    [Fact]
    public void TheSamePolicyRefusal_ForThreeRecipientsInTwoDomains_BecomesTheRelaysRefusal_AndTheEarlierOnesAreHandedBack()
    {
        var streak = new RefusalStreak();

        Assert.Empty(streak.Review("m1", Refusal("a@one.example", Blocked)).Redrive);
        Assert.Empty(streak.Review("m2", Refusal("b@two.example", Blocked)).Redrive);
        var (outcome, redrive) = streak.Review("m3", Refusal("c@two.example", Blocked));

        Assert.Equal(OutcomeKind.RelayRefusesIon, Assert.Single(outcome.Recipients).Answer.Kind);
        Assert.Equal(OutcomeKind.RelayRefusesIon, outcome.Summary.Kind);
        Assert.Equal(["m1", "m2"], redrive);
        // While it lasts, the next refusals are the relay's too, and nothing is handed back twice.
        var (later, again) = streak.Review("m4", Refusal("d@three.example", Blocked));
        Assert.Equal(OutcomeKind.RelayRefusesIon, later.Summary.Kind);
        Assert.Empty(again);
    }

    [Fact]
    public void AnAcceptedRecipient_EndsTheStreak()
    {
        var streak = new RefusalStreak();
        streak.Review("m1", Refusal("a@one.example", Blocked));
        streak.Review("m2", Refusal("b@two.example", Blocked));
        streak.Review("m3", Refusal("ok@two.example", SmtpAnswer.Accepted("Ok")));

        Assert.Equal(OutcomeKind.Permanent, streak.Review("m4", Refusal("c@three.example", Blocked)).Outcome.Summary.Kind);
    }

    [Fact]
    public void AddressRefusals_NeverMakeAStreak()
    {
        var streak = new RefusalStreak();

        for (var i = 0; i < 6; i++)
            Assert.Equal(OutcomeKind.Permanent, streak.Review($"m{i}", Refusal($"nobody{i}@d{i}.example", NoSuchUser)).Outcome.Summary.Kind);
    }

    [Fact]
    public void OneDomainAlone_IsNotTheRelay()
    {
        var streak = new RefusalStreak();

        for (var i = 0; i < 5; i++)
            Assert.Equal(OutcomeKind.Permanent, streak.Review($"m{i}", Refusal($"r{i}@same.example", Blocked)).Outcome.Summary.Kind);
    }
}
