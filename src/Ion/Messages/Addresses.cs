using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using MimeKit;

namespace Ion.Messages;

/// <summary>The one spelling of an email address ion stores, compares and sends, and what sending it needs.</summary>
// The canonical form: the local part as given, NFC-normalised and never case-folded (local parts are
// case-sensitive, RFC 5321 section 2.4), then "@", then the domain as its lowercase A-label form
// (UTS #46 ToASCII, nontransitional, STD3 rules). BÜCHER.DE, bücher.de, ｂücher.de and xn--bcher-kva.de
// are one domain with one spelling, and the domain is always ASCII: any relay and any next hop
// understands it without SMTPUTF8, so only a non-ASCII local part (RFC 6531) ever needs SMTPUTF8.
// The mapping is ICU's (through IdnMapping), which is why ion does not run with invariant globalization.
public static class Addresses
{
    // RFC 5321 section 4.5.3.1: a 64-octet local part, a 256-octet path including the angle brackets,
    // a 255-octet domain; in UTF-8 for SMTPUTF8 (RFC 6531 section 3.3).
    const int MaxLocalPartOctets = 64;
    const int MaxAddressOctets = 254;
    const int MaxDomainLength = 253;
    const int MaxLabelLength = 63;
    // Longer input is refused before any work is spent on it; mapping only rarely shortens a name.
    const int MaxInputLength = 1024;

    // atext (RFC 5322 section 3.2.3) and the dots of a dot-atom: no quoted local parts.
    static readonly SearchValues<char> _asciiLocalPartChars =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~.");

    static readonly ParserOptions _strict = new()
    {
        AddressParserComplianceMode = RfcComplianceMode.Strict,
        AllowAddressesWithoutDomain = false,
        AllowUnquotedCommasInAddresses = false,
    };

    // With invariant globalization (or without ICU) IdnMapping does no UTS #46 mapping and no
    // A-label validation: BÜCHER.DE became xn--bcher-2pa.de. Rather than send to a wrong domain, a
    // process in that state refuses every name that needs the mapping and still takes plain ASCII ones.
    static readonly bool _uts46 = HasUts46();

    /// <summary>
    /// The canonical form of <paramref name="address"/> (<c>local@domain</c>, nothing else): the local part
    /// NFC-normalised, the domain as its lowercase A-label. False, with the <paramref name="problem"/> in words
    /// (never quoting the input), for anything that is not one plain mailbox. Never throws.
    /// </summary>
    public static bool TryCanonicalize(
        string address, [NotNullWhen(true)] out string? canonical, [NotNullWhen(false)] out string? problem)
    {
        canonical = null;
        if (string.IsNullOrEmpty(address))
        {
            problem = "it is empty";
            return false;
        }
        if (address.Length > MaxInputLength)
        {
            problem = $"it is longer than {MaxAddressOctets} octets";
            return false;
        }
        var at = address.IndexOf('@', StringComparison.Ordinal);
        if (at < 0)
        {
            problem = "it has no @";
            return false;
        }
        if (address.IndexOf('@', at + 1) >= 0)
        {
            problem = "it has more than one @";
            return false;
        }
        if (!TryCanonicalizeLocalPart(address[..at], out var local, out problem))
            return false;
        var domain = address[(at + 1)..];
        if (domain.Length == 0)
        {
            problem = "the domain (after the @) is empty";
            return false;
        }
        if (!TryCanonicalizeDomain(domain, out var asciiDomain, out problem))
            return false;

        var result = local + "@" + asciiDomain;
        if (Encoding.UTF8.GetByteCount(result) > MaxAddressOctets)
        {
            problem = $"it is longer than {MaxAddressOctets} octets";
            return false;
        }
        // MimeKit writes the email, so it must read the address as this one mailbox and write it back
        // the same (it keeps the domain decoded, and encodes it again when asked for the A-label).
        if (!MailboxAddress.TryParse(_strict, result, out var mailbox)
            || !string.IsNullOrEmpty(mailbox.Name)
            || mailbox.Route.Count != 0
            || !string.Equals(mailbox.GetAddress(idnEncode: true), result, StringComparison.Ordinal))
        {
            problem = "MimeKit does not read it back as the same address";
            return false;
        }
        canonical = result;
        problem = null;
        return true;
    }

    /// <summary>
    /// Whether sending to or from <paramref name="canonicalAddress"/> needs SMTPUTF8: true exactly when its
    /// local part is not ASCII. Only the local part is looked at, since a canonical domain is always ASCII
    /// (and an address in MimeKit's form, with the domain decoded, gives the same answer).
    /// </summary>
    public static bool NeedsSmtpUtf8(string canonicalAddress)
    {
        ArgumentNullException.ThrowIfNull(canonicalAddress);
        var at = canonicalAddress.LastIndexOf('@');
        if (at < 0)
            throw new ArgumentException("not an email address: it has no @", nameof(canonicalAddress));
        return !Ascii.IsValid(canonicalAddress.AsSpan(0, at));
    }

    /// <summary>Why the canonical <paramref name="canonicalAddress"/> cannot be a From or Reply-To address, or null when it can.</summary>
    // An address the email comes from is written into every copy: one that needs SMTPUTF8 would make
    // every recipient's delivery depend on relays that offer it. Its domain may be internationalised,
    // since that travels as the A-label.
    internal static string? SenderProblem(string canonicalAddress) =>
        NeedsSmtpUtf8(canonicalAddress)
            ? "its local part is not ASCII, and a From or Reply-To address is in every copy, which would all need SMTPUTF8"
            : null;

    /// <summary>The lowercase A-label form of <paramref name="domain"/> (UTS #46 ToASCII), when it is a valid host name.</summary>
    internal static bool TryCanonicalizeDomain(
        string domain, [NotNullWhen(true)] out string? canonical, [NotNullWhen(false)] out string? problem)
    {
        canonical = null;
        if (string.IsNullOrEmpty(domain))
        {
            problem = "the domain is empty";
            return false;
        }
        if (domain.Length > MaxInputLength)
        {
            problem = $"the domain is longer than {MaxDomainLength} characters";
            return false;
        }
        var international = NeedsIdna(domain);
        var kind = international ? "internationalised domain name" : "domain name";
        if (international && !_uts46)
        {
            problem = "internationalised domain names need ICU, and this process runs without it (invariant globalization)";
            return false;
        }
        string ascii;
        try
        {
            // Lowercasing ASCII first changes nothing UTS #46 would not (it maps A-Z to a-z), but .NET gives an
            // all-ASCII name back in the case it was given, and the canonical form is lowercase.
            ascii = new IdnMapping { UseStd3AsciiRules = true }.GetAscii(LowerAscii(domain));
        }
        catch (ArgumentException)
        {
            problem = $"the domain is not a valid {kind}";
            return false;
        }
        // ICU takes a trailing dot (the root); an address may not have one. The check also keeps anything
        // that is not a plain host name (letters, digits, hyphens) out of RCPT TO and the headers.
        if (!IsHostName(ascii))
        {
            problem = $"the domain is not a valid {kind}";
            return false;
        }
        canonical = ascii;
        problem = null;
        return true;
    }

    static bool TryCanonicalizeLocalPart(string local, [NotNullWhen(true)] out string? canonical, [NotNullWhen(false)] out string? problem)
    {
        canonical = null;
        if (local.Length == 0)
        {
            problem = "the local part (before the @) is empty";
            return false;
        }
        if (!Ascii.IsValid(local))
        {
            // Normalize throws on a lone surrogate, so those are refused first.
            for (var i = 0; i < local.Length;)
            {
                if (Rune.DecodeFromUtf16(local.AsSpan(i), out _, out var used) != OperationStatus.Done)
                {
                    problem = "the local part is not valid UTF-16 text";
                    return false;
                }
                i += used;
            }
            // One spelling for what looks the same: a composed ö and o + U+0308 are one mailbox to a person.
            // The checks below run on the normalised text, since that is what is sent.
            local = local.Normalize(NormalizationForm.FormC);
        }

        if (local[0] == '.' || local[^1] == '.')
        {
            problem = "the local part starts or ends with a dot";
            return false;
        }
        if (local.Contains("..", StringComparison.Ordinal))
        {
            problem = "the local part has two dots in a row";
            return false;
        }
        foreach (var rune in local.EnumerateRunes())
        {
            var allowed = rune.IsAscii ? _asciiLocalPartChars.Contains((char)rune.Value) : IsAllowedNonAscii(rune);
            if (!allowed)
            {
                problem = $"the local part contains {RuneName(rune)}";
                return false;
            }
        }
        if (Encoding.UTF8.GetByteCount(local) > MaxLocalPartOctets)
        {
            problem = $"the local part is longer than {MaxLocalPartOctets} octets";
            return false;
        }
        canonical = local;
        problem = null;
        return true;
    }

    // RFC 6531 lets a dot-atom hold any UTF8-non-ascii; these are refused anyway, because they are
    // invisible, break the line or the text, or mean nothing yet: controls (C1), format characters
    // (bidi overrides, zero-width joiners, soft hyphens), spaces and separators, private use, unassigned,
    // and U+FFFD, which stands for text already lost in some decoding on the way.
    static bool IsAllowedNonAscii(Rune rune) => rune != Rune.ReplacementChar && Rune.GetUnicodeCategory(rune) is not (
        UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
        or UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
        or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned);

    // A name needs the IDNA mapping when it has non-ASCII characters or an A-label ("xn--", any case)
    // that must be checked to decode to a valid U-label.
    static bool NeedsIdna(string domain)
    {
        if (!Ascii.IsValid(domain))
            return true;
        var span = domain.AsSpan();
        foreach (var range in span.Split('.'))
        {
            if (span[range].StartsWith("xn--", StringComparison.OrdinalIgnoreCase))
                return true;
        }
        return false;
    }

    static string LowerAscii(string text) =>
        text.AsSpan().ContainsAnyInRange('A', 'Z')
            ? string.Create(text.Length, text, static (span, source) =>
            {
                for (var i = 0; i < source.Length; i++)
                    span[i] = char.IsAsciiLetterUpper(source[i]) ? (char)(source[i] | 0x20) : source[i];
            })
            : text;

    // Lowercase LDH labels of 1 to 63 characters, neither starting nor ending with a hyphen (RFC 1123 section 2.1).
    static bool IsHostName(string domain)
    {
        if (domain.Length is 0 or > MaxDomainLength)
            return false;
        var span = domain.AsSpan();
        foreach (var range in span.Split('.'))
        {
            var label = span[range];
            if (label.Length is 0 or > MaxLabelLength || label[0] == '-' || label[^1] == '-')
                return false;
            foreach (var c in label)
            {
                if (!char.IsAsciiLetterLower(c) && !char.IsAsciiDigit(c) && c != '-')
                    return false;
            }
        }
        return true;
    }

    static string RuneName(Rune rune) => rune.Value switch
    {
        ' ' => "a space",
        > ' ' and <= '~' => $"'{(char)rune.Value}'",
        _ => "U+" + rune.Value.ToString("X4", CultureInfo.InvariantCulture),
    };

    static bool HasUts46()
    {
        try
        {
            // Case folding and width mapping are what invariant mode lacks.
            return new IdnMapping { UseStd3AsciiRules = true }.GetAscii("Ｂücher.de") == "xn--bcher-kva.de";
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
