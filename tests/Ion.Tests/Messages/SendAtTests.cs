using System.Text.Json.Nodes;
using Ion.Messages;

namespace Ion.Tests.Messages;

public class SendAtTests
{
    static readonly MessageRules Rules = new("noreply@example.com", []);
    static readonly DateTimeOffset Now = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    static string Send(JsonNode? sendAt) => new JsonObject
    {
        ["action"] = "send",
        ["recipient"] = "a@example.com",
        ["subject"] = "Hi",
        ["body_text"] = "plain",
        ["send_at"] = sendAt,
    }.ToJsonString();

    public static TheoryData<string, DateTimeOffset> ValidTimes => new()
    {
        { "2026-12-24T09:00:00Z", new(2026, 12, 24, 9, 0, 0, TimeSpan.Zero) },
        // An offset is kept to its instant: the time is held in UTC.
        { "2026-12-24T10:00:00+01:00", new(2026, 12, 24, 9, 0, 0, TimeSpan.Zero) },
        { "2026-12-24T04:30:00-04:30", new(2026, 12, 24, 9, 0, 0, TimeSpan.Zero) },
        { "2026-12-24T09:00Z", new(2026, 12, 24, 9, 0, 0, TimeSpan.Zero) },
        { "2026-12-24T09:00:00.250Z", new(2026, 12, 24, 9, 0, 0, 250, TimeSpan.Zero) },
        // In the past: accepted, and sent at once.
        { "2020-01-01T00:00:00Z", new(2020, 1, 1, 0, 0, 0, TimeSpan.Zero) },
    };

    [Theory]
    [MemberData(nameof(ValidTimes))]
    public void SendAt_WithAnOffsetOrZ_IsReadAsThatInstantInUtc(string text, DateTimeOffset expected)
    {
        var email = Assert.IsType<SendRequest>(MessageParser.Parse(Send(text), Rules)).Email;

        Assert.Equal(expected, email.SendAt);
        Assert.Equal(TimeSpan.Zero, email.SendAt!.Value.Offset);
    }

    [Fact]
    public void SendAt_LeftOutOrNull_SendsAtOnce()
    {
        Assert.Null(Assert.IsType<SendRequest>(MessageParser.Parse(Send(null), Rules)).Email.SendAt);
    }

    public static TheoryData<JsonNode, string> InvalidTimes => new()
    {
        { "2026-12-24T09:00:00", "has no offset" },
        { "2026-12-24T09:00", "has no offset" },
        { "2026-12-24", "is not an ISO 8601 time" },
        { "tomorrow at nine", "is not an ISO 8601 time" },
        { "2026-13-24T09:00:00Z", "is not an ISO 8601 time" },
        { "2026-12-24 09:00:00Z", "is not an ISO 8601 time" },
        { "24/12/2026 09:00 +01:00", "is not an ISO 8601 time" },
        { "", "is not an ISO 8601 time" },
        { 1798102800, "must be a string, not a number" },
        { true, "must be a string, not a boolean" },
    };

    [Theory]
    [MemberData(nameof(InvalidTimes))]
    public void SendAt_NotAnIsoTimeWithAnOffset_IsRefused_NamingTheField(JsonNode value, string problem)
    {
        var invalid = Assert.IsType<InvalidMessage>(MessageParser.Parse(Send(value), Rules));

        Assert.Equal("send_at", invalid.Field);
        Assert.StartsWith("invalid: send_at: ", invalid.Reason, StringComparison.Ordinal);
        Assert.Contains(problem, invalid.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, true)]
    [InlineData(-3600, true)]
    [InlineData(30 * 86400, true)]
    [InlineData(30 * 86400 + 1, false)]
    [InlineData(365 * 86400, false)]
    public void SendAt_MoreThanThirtyDaysAhead_IsAProblem_AtPublishTime(int secondsAhead, bool accepted)
    {
        var email = Assert.IsType<SendRequest>(MessageParser.Parse(Send(Now.AddSeconds(secondsAhead).ToString("O")), Rules)).Email;

        var problem = MessageParser.ScheduleProblem(email, Now);

        if (accepted)
        {
            Assert.Null(problem);
            return;
        }
        Assert.NotNull(problem);
        Assert.Equal("send_at", problem.Field);
        Assert.Contains("is more than 30 days ahead", problem.Reason, StringComparison.Ordinal);
    }
}
