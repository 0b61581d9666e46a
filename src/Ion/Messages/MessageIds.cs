using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Ion.Messages;

/// <summary>Ion's message ids, and the RFC 5322 Message-ID each email carries.</summary>
public static class MessageIds
{
    // When a Message-ID's own domain cannot be used; .invalid is reserved (RFC 2606), so it can
    // never collide with a real host's ids.
    const string FallbackDomain = "ion.invalid";

    /// <summary>A new id for a message whose client gave none: 32 lowercase hex digits.</summary>
    // Version 7 ids start with their creation time, so they sort roughly by age in the queue and
    // the delivery log's index. Only that ordering depends on the clock, never a decision.
    public static string New() => Guid.CreateVersion7().ToString("N");

    /// <summary>The Message-ID (without angle brackets) of the email sent for message <paramref name="id"/>.</summary>
    // The rule: "ion." + the first 32 lowercase hex digits of SHA-256(UTF-8 of id) + "@" + the
    // sender's domain, lowercased (IDN converted to its xn-- form).
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

    static string MessageIdDomain(string? domain)
    {
        if (string.IsNullOrEmpty(domain))
            return FallbackDomain;
        if (!Ascii.IsValid(domain))
        {
            try
            {
                domain = new IdnMapping().GetAscii(domain);
            }
            catch (ArgumentException)
            {
                return FallbackDomain;
            }
        }
        domain = domain.ToLowerInvariant();
        return IsHostName(domain) ? domain : FallbackDomain;
    }

    // Only what a dot-atom may hold and what a host name uses, so the result parses back as a msg-id.
    static bool IsHostName(string domain)
    {
        if (domain.Length > 253)
            return false;
        foreach (var label in domain.Split('.'))
        {
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-')
                return false;
            foreach (var c in label)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c != '-')
                    return false;
            }
        }
        return true;
    }
}
