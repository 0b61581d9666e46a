using System.Text.Json.Serialization;

namespace Ion.Events;

/// <summary>What an event says happened. The names are the <c>type</c> of the JSON.</summary>
public static class EventTypes
{
    /// <summary>ion took the message (a new id, on disk or on the queue).</summary>
    public const string Accepted = "accepted";
    /// <summary>The relay accepted the message for one recipient.</summary>
    public const string Sent = "sent";
    /// <summary>The message goes again later: with the delay and why.</summary>
    public const string Deferred = "deferred";
    /// <summary>The relay refused one recipient for good.</summary>
    public const string Failed = "failed";
    /// <summary>The message went to the dead letters, with its failure class and reason.</summary>
    public const string Dead = "dead";
    /// <summary>One recipient was left out: it is on the suppression list.</summary>
    public const string Suppressed = "suppressed";
    /// <summary>A dead letter went back to the queue with fresh attempts.</summary>
    public const string Redriven = "redriven";
    /// <summary>A bounce that arrived later (an SES notification, a DSN) put a recipient on the suppression list.</summary>
    public const string Bounced = "bounced";
    /// <summary>A recipient reported mail as spam (SES): on the suppression list for good.</summary>
    public const string Complained = "complained";

    public static readonly IReadOnlyList<string> All = [Accepted, Sent, Deferred, Failed, Dead, Suppressed, Redriven, Bounced, Complained];
}

/// <summary>
/// One delivery event, as webhooks receive it (<c>"version": 1</c>). Never a body. Per recipient (<c>sent</c>,
/// <c>failed</c>, <c>suppressed</c>) it names the recipient by its place in the message's <c>to</c>, <c>cc</c>,
/// <c>bcc</c> (in that order, from 0) and its domain, and by its address only where ion may log addresses
/// (<c>Ion:Delivery:LogRecipientAddresses</c>).
/// </summary>
public sealed record DeliveryEvent
{
    public int Version { get; init; } = 1;
    /// <summary>Unique per event; a receiver that has seen it may ignore it (events come at least once).</summary>
    public required string Id { get; init; }
    public required string Type { get; init; }
    public required DateTimeOffset At { get; init; }
    /// <summary>ion's id of the message; absent in <c>bounced</c> and <c>complained</c>, which come from reports that
    /// name only the email's <see cref="EmailMessageId"/>.</summary>
    public string? MessageId { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    /// <summary>The attempt this event is about (1 is the first), or null for accepted and redriven.</summary>
    public int? Attempt { get; init; }
    /// <summary>Which relay took that attempt: <c>primary</c> or <c>fallback</c> (<c>Ion:Smtp:Fallback</c>); absent
    /// when no relay was asked.</summary>
    public string? Relay { get; init; }
    public int? RecipientIndex { get; init; }
    public string? Recipient { get; init; }
    public string? RecipientDomain { get; init; }
    public int? SmtpCode { get; init; }
    public string? Reply { get; init; }
    /// <summary>For <c>deferred</c>: how long until the next attempt.</summary>
    public double? DelaySeconds { get; init; }
    public string? Reason { get; init; }
    public string? FailureClass { get; init; }
    /// <summary>For <c>bounced</c> and <c>complained</c>: the Message-ID of the email the report is about, when it is
    /// one of ion's (derived from ion's id: <c>ion.HASH@domain</c>), and what brought the report (<c>ses</c>, <c>dsn</c>).</summary>
    public string? EmailMessageId { get; init; }
    public string? Source { get; init; }
}

/// <summary>An event on its way to one webhook, as the outbox keeps it: the JSON is fixed when the event happens, so a
/// retry sends exactly the same bytes (and signs them anew). <see cref="MessageId"/> orders the events of one message
/// (a report's events are ordered by their address instead).</summary>
public sealed record OutboxEvent(string Webhook, string EventId, string MessageId, string Type, string Payload, DateTimeOffset CreatedAt);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(DeliveryEvent))]
internal sealed partial class EventJson : JsonSerializerContext;
