namespace Ion.Delivery;

public enum OutcomeKind
{
    /// <summary>The relay accepted the message (2xx).</summary>
    Sent,
    /// <summary>A temporary failure of this message (4xx, timeout, connection dropped mid-message): retry later.</summary>
    RetryLater,
    /// <summary>A permanent failure of this message (5xx, enhanced 5.x.x, invalid): dead letter at once.</summary>
    Rejected,
    /// <summary>The relay itself is unusable (refused, TLS, authentication, 421): not the message's fault.</summary>
    RelayUnavailable,
}

/// <summary>What one delivery attempt came to. <see cref="Detail"/> is the server's reply text or the error.</summary>
public sealed record DeliveryOutcome(OutcomeKind Kind, int? SmtpCode, string? EnhancedCode, string Detail)
{
    public static DeliveryOutcome Sent(string reply) => new(OutcomeKind.Sent, 250, SmtpReply.ParseEnhancedCode(reply), reply);

    /// <summary>One line for logs and dead letters, e.g. <c>550 5.1.1 No such user</c>.</summary>
    public string Reply => SmtpCode is { } code && !Detail.StartsWith(code.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
        ? $"{code} {Detail}"
        : Detail;
}
