using System.Text.Json.Serialization;

namespace Ion.Log;

[JsonConverter(typeof(JsonStringEnumConverter<MessageState>))]
public enum MessageState
{
    [JsonStringEnumMemberName("queued")] Queued,
    [JsonStringEnumMemberName("retrying")] Retrying,
    [JsonStringEnumMemberName("sent")] Sent,
    [JsonStringEnumMemberName("dead")] Dead,
}

/// <summary>Everything the delivery log knows of one message id.</summary>
public sealed record DeliveryRecord(
    string Id,
    MessageState State,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    string? LastReason,
    IReadOnlyList<DeliveryAttempt> Attempts);

/// <summary>One try at the relay. <see cref="Outcome"/> is <c>sent</c>, <c>retry</c>, <c>rejected</c> or <c>invalid</c>;
/// <see cref="Reply"/> is the server's answer or the error.</summary>
public sealed record DeliveryAttempt(DateTimeOffset At, string Outcome, int? SmtpCode, string Reply, TimeSpan Duration);
