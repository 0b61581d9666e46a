using System.Text.Json.Serialization;

namespace Ion.Suppression;

/// <summary>Why an address is on the suppression list.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<SuppressionReason>))]
public enum SuppressionReason
{
    /// <summary>The address refused mail for good (no such user, disabled, a domain that takes no mail).</summary>
    [JsonStringEnumMemberName("bounce")] Bounce,
    /// <summary>Its owner reported mail from here as spam.</summary>
    [JsonStringEnumMemberName("complaint")] Complaint,
    /// <summary>Put there by an operator.</summary>
    [JsonStringEnumMemberName("manual")] Manual,
}

/// <summary>One address ion does not send to, why, since when, and until when (null: until removed).
/// <see cref="Address"/> is canonical (A-label domain, as ion sends it); lookups ignore case.</summary>
public sealed record SuppressedAddress(
    string Address,
    SuppressionReason Reason,
    string Detail,
    DateTimeOffset At,
    DateTimeOffset? ExpiresAt = null,
    string? MessageId = null)
{
    public bool IsActiveAt(DateTimeOffset now) => ExpiresAt is not { } expires || expires > now;
}

/// <summary>A page of the list: addresses after <see cref="After"/> in order, optionally of one domain or reason.</summary>
public sealed record SuppressionQuery(string? Domain = null, SuppressionReason? Reason = null, string? After = null, int Limit = 100)
{
    /// <summary>A domain as given (<c>Bücher.example</c>) as the list keeps it (<c>xn--bcher-kva.example</c>).</summary>
    public static string CanonicalDomain(string domain) =>
        Messages.Addresses.TryCanonicalize($"x@{domain}", out var canonical, out _) ? canonical[2..] : domain;
}

public static class SuppressionReasons
{
    public const string Names = "bounce, complaint, manual";

    /// <summary>A reason by its name (<c>bounce</c>), in any case.</summary>
    public static bool TryParse(string name, out SuppressionReason reason) =>
        Enum.TryParse(name, ignoreCase: true, out reason) && Enum.IsDefined(reason);

    public static string Name(this SuppressionReason reason) => reason.ToString().ToLowerInvariant();
}

/// <summary>
/// The addresses ion does not send to. One per store (a table in the SQLite file, a DynamoDB table of its own on AWS);
/// the delivery core looks recipients up before each send and adds those the relay refused for good.
/// </summary>
public interface ISuppressionList
{
    /// <summary>Those of <paramref name="addresses"/> suppressed at <paramref name="now"/>, by address as given.</summary>
    Task<IReadOnlyDictionary<string, SuppressedAddress>> FindAsync(IReadOnlyCollection<string> addresses, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Adds or renews each entry. A complaint is never replaced by a bounce or a manual entry: an owner who
    /// said stop keeps meaning it.</summary>
    Task AddAsync(IReadOnlyList<SuppressedAddress> entries, CancellationToken cancellationToken);

    /// <summary>Takes <paramref name="address"/> off the list; false when it was not on it.</summary>
    Task<bool> RemoveAsync(string address, CancellationToken cancellationToken);

    /// <summary>Takes off the addresses the refusals of <paramref name="messageIds"/> put on the list (refusals later
    /// found to be about the relay, not the addresses). Returns how many.</summary>
    Task<int> RemoveAddedByAsync(IReadOnlyCollection<string> messageIds, CancellationToken cancellationToken);

    /// <summary>The entries still in force at <paramref name="now"/>, by address.</summary>
    Task<IReadOnlyList<SuppressedAddress>> ListAsync(SuppressionQuery query, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Deletes the entries expired at <paramref name="now"/> (every read ignores them already) and returns how
    /// many. A store whose database expires items itself (DynamoDB's TTL) has nothing to do.</summary>
    Task<int> PruneAsync(DateTimeOffset now, CancellationToken cancellationToken) => Task.FromResult(0);
}
