using System.Text.Json;

namespace Ion.Log;

/// <summary>How states and failure classes are written in a store (a column, an item attribute, a queue attribute):
/// the same lower-case names as in the API's JSON, in one place for every store.</summary>
public static class StoredNames
{
    public static string Of(MessageState state) => state switch
    {
        MessageState.Queued => "queued",
        MessageState.Retrying => "retrying",
        MessageState.Sent => "sent",
        MessageState.Dead => "dead",
        MessageState.Suppressed => "suppressed",
        MessageState.Scheduled => "scheduled",
        MessageState.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(state)),
    };

    public static string Of(FailureClass failureClass) => JsonNamingPolicy.SnakeCaseLower.ConvertName(failureClass.ToString());

    /// <exception cref="InvalidDataException">Not a state ion writes.</exception>
    public static MessageState State(string? name) => name switch
    {
        "queued" => MessageState.Queued,
        "retrying" => MessageState.Retrying,
        "sent" => MessageState.Sent,
        "dead" => MessageState.Dead,
        "suppressed" => MessageState.Suppressed,
        "scheduled" => MessageState.Scheduled,
        "cancelled" => MessageState.Cancelled,
        _ => throw new InvalidDataException($"unknown message state '{name}' in the delivery log"),
    };

    /// <exception cref="InvalidDataException">Not a failure class ion writes.</exception>
    public static FailureClass FailureClass(string name) =>
        Enum.TryParse<FailureClass>(name, ignoreCase: true, out var failureClass)
            ? failureClass
            : throw new InvalidDataException($"unknown failure class '{name}' in the delivery log");
}
