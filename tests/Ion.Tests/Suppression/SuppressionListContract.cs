using Ion.Suppression;

namespace Ion.Tests.Suppression;

// What every ISuppressionList must do: the SQLite list and the DynamoDB one pass it.
public abstract class SuppressionListContract
{
    /// <summary>A fresh, empty list for one test. The subclass owns and disposes it.</summary>
    protected abstract Task<ISuppressionList> CreateListAsync();

    protected static CancellationToken Cancellation => TestContext.Current.CancellationToken;

    private static readonly DateTimeOffset T0 = new(2026, 12, 7, 12, 0, 0, TimeSpan.Zero);

    private static SuppressedAddress Entry(string address, SuppressionReason reason = SuppressionReason.Bounce, DateTimeOffset? at = null, DateTimeOffset? expires = null) =>
        new(address, reason, $"{reason} of {address}", at ?? T0, expires, "m-1");

    [Fact]
    public async Task AnAddedAddress_IsFound_WhateverTheCaseItIsAskedIn_AndOthersAreNot()
    {
        var list = await CreateListAsync();
        await list.AddAsync([Entry("bob@y.example"), Entry("Carol@Z.example", SuppressionReason.Complaint)], Cancellation);

        var found = await list.FindAsync(["BOB@y.example", "alice@x.example", "carol@z.example"], T0.AddMinutes(1), Cancellation);

        Assert.Equal(["BOB@y.example", "carol@z.example"], found.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(SuppressionReason.Bounce, found["BOB@y.example"].Reason);
        Assert.Equal("Bounce of bob@y.example", found["BOB@y.example"].Detail);
        Assert.Equal("m-1", found["BOB@y.example"].MessageId);
        Assert.Equal(T0, found["BOB@y.example"].At);
        Assert.Equal(SuppressionReason.Complaint, found["carol@z.example"].Reason);
    }

    [Fact]
    public async Task AnExpiredEntry_IsNeitherFoundNorListed_AndAddingAgainRenewsIt()
    {
        var list = await CreateListAsync();
        await list.AddAsync([Entry("bob@y.example", expires: T0.AddDays(90))], Cancellation);

        Assert.Single(await list.FindAsync(["bob@y.example"], T0.AddDays(89), Cancellation));
        Assert.Empty(await list.FindAsync(["bob@y.example"], T0.AddDays(90), Cancellation));
        Assert.Empty(await list.ListAsync(new SuppressionQuery(), T0.AddDays(91), Cancellation));

        await list.AddAsync([Entry("bob@y.example", at: T0.AddDays(100), expires: T0.AddDays(190))], Cancellation);
        Assert.Equal(T0.AddDays(100), (await list.FindAsync(["bob@y.example"], T0.AddDays(101), Cancellation))["bob@y.example"].At);
    }

    [Fact]
    public async Task AComplaint_IsNotReplacedByABounceOrAManualEntry_OnlyByAnotherComplaint()
    {
        var list = await CreateListAsync();
        await list.AddAsync([Entry("bob@y.example", SuppressionReason.Complaint)], Cancellation);
        await list.AddAsync([Entry("bob@y.example", SuppressionReason.Bounce, T0.AddDays(1), T0.AddDays(91))], Cancellation);
        await list.AddAsync([Entry("bob@y.example", SuppressionReason.Manual, T0.AddDays(2))], Cancellation);

        var kept = (await list.FindAsync(["bob@y.example"], T0.AddDays(200), Cancellation))["bob@y.example"];
        Assert.Equal(SuppressionReason.Complaint, kept.Reason);
        Assert.Equal(T0, kept.At);
        Assert.Null(kept.ExpiresAt);

        await list.AddAsync([Entry("bob@y.example", SuppressionReason.Complaint, T0.AddDays(3))], Cancellation);
        Assert.Equal(T0.AddDays(3), (await list.FindAsync(["bob@y.example"], T0.AddDays(4), Cancellation))["bob@y.example"].At);

        // A bounce is replaced by anything newer.
        await list.AddAsync([Entry("dan@y.example", SuppressionReason.Bounce)], Cancellation);
        await list.AddAsync([Entry("dan@y.example", SuppressionReason.Manual, T0.AddDays(1))], Cancellation);
        Assert.Equal(SuppressionReason.Manual, (await list.FindAsync(["dan@y.example"], T0.AddDays(2), Cancellation))["dan@y.example"].Reason);
    }

    [Fact]
    public async Task Remove_TakesTheAddressOff_AndSaysWhetherItWasThere()
    {
        var list = await CreateListAsync();
        await list.AddAsync([Entry("bob@y.example")], Cancellation);

        Assert.True(await list.RemoveAsync("Bob@Y.example", Cancellation));
        Assert.False(await list.RemoveAsync("bob@y.example", Cancellation));
        Assert.Empty(await list.FindAsync(["bob@y.example"], T0, Cancellation));
    }

    [Fact]
    public async Task List_PagesByAddress_AndFiltersByDomainAndReason()
    {
        var list = await CreateListAsync();
        await list.AddAsync([
            Entry("d@b.example"), Entry("a@a.example"), Entry("c@b.example", SuppressionReason.Complaint),
            Entry("b@a.example", SuppressionReason.Manual), Entry("e@b.example"),
        ], Cancellation);

        var first = await list.ListAsync(new SuppressionQuery(Limit: 2), T0, Cancellation);
        Assert.Equal(["a@a.example", "b@a.example"], first.Select(e => e.Address));
        var second = await list.ListAsync(new SuppressionQuery(After: first[^1].Address, Limit: 2), T0, Cancellation);
        Assert.Equal(["c@b.example", "d@b.example"], second.Select(e => e.Address));
        var last = await list.ListAsync(new SuppressionQuery(After: second[^1].Address, Limit: 2), T0, Cancellation);
        Assert.Equal(["e@b.example"], last.Select(e => e.Address));

        Assert.Equal(["c@b.example", "d@b.example", "e@b.example"],
            (await list.ListAsync(new SuppressionQuery(Domain: "B.example"), T0, Cancellation)).Select(e => e.Address));
        Assert.Equal(["c@b.example"],
            (await list.ListAsync(new SuppressionQuery(Reason: SuppressionReason.Complaint), T0, Cancellation)).Select(e => e.Address));
    }

    [Fact]
    public async Task RemoveAddedBy_TakesOffTheBouncesThoseMessagesAdded_NotOthersNorComplaints()
    {
        var list = await CreateListAsync();
        await list.AddAsync([
            Entry("a@x.example") with { MessageId = "m-1" }, Entry("b@x.example") with { MessageId = "m-2" },
            Entry("c@x.example") with { MessageId = "m-3" }, Entry("d@x.example", SuppressionReason.Complaint) with { MessageId = "m-1" },
        ], Cancellation);

        Assert.Equal(2, await list.RemoveAddedByAsync(["m-1", "m-2"], Cancellation));

        Assert.Equal(["c@x.example", "d@x.example"], (await list.ListAsync(new SuppressionQuery(), T0, Cancellation)).Select(e => e.Address));
    }
}
