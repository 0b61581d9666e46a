using System.Security.Cryptography;
using System.Text;

namespace Ion.Messages;

/// <summary>Ion's message ids, and the RFC 5322 Message-ID each email carries.</summary>
public static class MessageIds
{
    // When a Message-ID's own domain cannot be used; .invalid is reserved (RFC 2606), so it can
    // never collide with a real host's ids.
    const string FallbackDomain = "ion.invalid";

    static readonly System.Buffers.SearchValues<char> LowerHex = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>A new id for a message whose client gave none: 32 lowercase hex digits.</summary>
    // Version 7 ids start with their creation time, so they sort roughly by age in the queue and
    // the delivery log's index. Only that ordering depends on the clock, never a decision.
    public static string New() => Guid.CreateVersion7().ToString("N");

    /// <summary>The Message-ID (without angle brackets) of the email sent for message <paramref name="id"/>.</summary>
    // The rule: "ion." + the first 32 lowercase hex digits of SHA-256(UTF-8 of id) + "@" + the
    // sender's domain in canonical form: lowercase, an IDN as its A-label (Addresses); ion.invalid when
    // it is none.
    // A hash rather than the id itself, because a client id may hold characters a msg-id may not
    // ('/', '@', '='), and because the id is the client's business, not the recipient's. 128 bits
    // keep accidental collisions out of reach. The same id always gives the same Message-ID, so a
    // duplicate send is recognisable downstream; the sender's domain keeps ids of different
    // senders apart, as RFC 5322 section 3.6.4 recommends.
    public static string MessageIdHeader(string id, string senderDomain)
    {
        ArgumentNullException.ThrowIfNull(id);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(id), hash);
        return $"ion.{Convert.ToHexStringLower(hash[..16])}@{MessageIdDomain(senderDomain)}";
    }

    /// <summary>Whether <paramref name="messageId"/> (without angle brackets) is the form <see cref="MessageIdHeader"/>
    /// gives: "ion.", 32 lowercase hex digits, "@". A report about such an email is about one of ion's.</summary>
    public static bool IsIons(string messageId)
    {
        ArgumentNullException.ThrowIfNull(messageId);
        const int Digits = 32;
        return messageId.Length > 4 + Digits + 1 && messageId.StartsWith("ion.", StringComparison.Ordinal) && messageId[4 + Digits] == '@'
            && !messageId.AsSpan(4, Digits).ContainsAnyExcept(LowerHex);
    }

    // A canonical domain is a lowercase host name: only what a dot-atom may hold, so the result parses
    // back as a msg-id.
    static string MessageIdDomain(string? domain) =>
        domain is not null && Addresses.TryCanonicalizeDomain(domain, out var canonical, out _) ? canonical : FallbackDomain;
}
