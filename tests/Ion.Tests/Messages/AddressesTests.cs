using System.Text;
using Ion.Messages;

namespace Ion.Tests.Messages;

public class AddressesTests
{
    [Theory]
    // The issue's examples: UTS #46 maps case and width, and an A-label is taken as it is.
    [InlineData("bob@BÜCHER.DE", "bob@xn--bcher-kva.de")]
    [InlineData("a@ｅxample.com", "a@example.com")]
    [InlineData("bob@xn--bcher-kva.de", "bob@xn--bcher-kva.de")]
    [InlineData("bob@XN--BCHER-KVA.DE", "bob@xn--bcher-kva.de")]
    [InlineData("bob@bücher.de", "bob@xn--bcher-kva.de")]
    [InlineData("bob@ｂücher.de", "bob@xn--bcher-kva.de")]
    [InlineData("bob@bücher\u3002de", "bob@xn--bcher-kva.de")]
    [InlineData("bob@ＢＵ\u0308ＣＨＥＲ．ＤＥ", "bob@xn--bcher-kva.de")]
    // Nontransitional: ß stays ß (xn--fa-hia), it does not become ss.
    [InlineData("a@faß.de", "a@xn--fa-hia.de")]
    [InlineData("a@①.com", "a@1.com")]
    [InlineData("a@例子.广告", "a@xn--fsqu00a.xn--4rr70v")]
    // Local parts are case-sensitive: only the domain is lowercased.
    [InlineData("Bob.Smith@Example.COM", "Bob.Smith@example.com")]
    [InlineData("root@localhost", "root@localhost")]
    [InlineData("o'brien!#$%&*=?^_`{|}~-/@example.com", "o'brien!#$%&*=?^_`{|}~-/@example.com")]
    [InlineData("jörg@example.com", "jörg@example.com")]
    [InlineData("Jörg@BÜCHER.DE", "Jörg@xn--bcher-kva.de")]
    // NFC: o + combining diaeresis is the same mailbox as ö.
    [InlineData("jo\u0308rg@example.com", "jörg@example.com")]
    [InlineData("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v")]
    [InlineData("😀@example.com", "😀@example.com")]
    public void ValidAddress_BecomesLocalPartAtLowercaseALabel(string address, string expected)
    {
        Assert.True(Addresses.TryCanonicalize(address, out var canonical, out var problem), problem);

        Assert.Equal(expected, canonical);
        Assert.Null(problem);
    }

    [Theory]
    [InlineData("bob@BÜCHER.DE")]
    [InlineData("jo\u0308rg@ＥＸＡＭＰＬＥ.com")]
    [InlineData("a@faß.de")]
    public void Canonicalizing_TwiceChangesNothing(string address)
    {
        Assert.True(Addresses.TryCanonicalize(address, out var once, out _));
        Assert.True(Addresses.TryCanonicalize(once, out var twice, out _));

        Assert.Equal(once, twice);
    }

    [Theory]
    // An A-label that does not decode to a valid U-label (xn--bcher-2pa is "bÜcher", unmapped).
    [InlineData("bob@xn--bcher-2pa.de", "the domain is not a valid internationalised domain name")]
    [InlineData("bob@XN--BCHER-2PA.DE", "the domain is not a valid internationalised domain name")]
    [InlineData("a@xn--.com", "the domain is not a valid internationalised domain name")]
    [InlineData("a@bü_cher.de", "the domain is not a valid internationalised domain name")]
    [InlineData("a@bücher.de.", "the domain is not a valid internationalised domain name")]
    [InlineData("a@example\uff0ecom\uff0e", "the domain is not a valid internationalised domain name")]
    [InlineData("a@exa\u200dmple.com", "the domain is not a valid internationalised domain name")]
    [InlineData("a@exa_mple.com", "the domain is not a valid domain name")]
    [InlineData("a@-example.com", "the domain is not a valid domain name")]
    [InlineData("a@example.com.", "the domain is not a valid domain name")]
    [InlineData("a@exa..mple.com", "the domain is not a valid domain name")]
    [InlineData("a@[127.0.0.1]", "the domain is not a valid domain name")]
    [InlineData("a@", "the domain (after the @) is empty")]
    [InlineData("@example.com", "the local part (before the @) is empty")]
    [InlineData("bob", "it has no @")]
    [InlineData("", "it is empty")]
    [InlineData("a@b@example.com", "it has more than one @")]
    [InlineData("Bob <bob@example.com>", "the local part contains a space")]
    [InlineData("\"a b\"@example.com", "the local part contains '\"'")]
    [InlineData("a,b@example.com", "the local part contains ','")]
    [InlineData(".a@example.com", "the local part starts or ends with a dot")]
    [InlineData("a.@example.com", "the local part starts or ends with a dot")]
    [InlineData("a..b@example.com", "the local part has two dots in a row")]
    [InlineData("a\u0007b@example.com", "the local part contains U+0007")]
    [InlineData("a\u0085b@example.com", "the local part contains U+0085")]
    [InlineData("a\u00a0b@example.com", "the local part contains U+00A0")]
    [InlineData("a\u3000b@example.com", "the local part contains U+3000")]
    [InlineData("\u202ea@example.com", "the local part contains U+202E")]
    [InlineData("a\u200bb@example.com", "the local part contains U+200B")]
    [InlineData("a\u2028b@example.com", "the local part contains U+2028")]
    [InlineData("a\ue000b@example.com", "the local part contains U+E000")]
    [InlineData("a\ufffdb@example.com", "the local part contains U+FFFD")]
    // U+037E GREEK QUESTION MARK is a ';' once normalised, and is judged as what is sent.
    [InlineData("a\u037eb@example.com", "the local part contains ';'")]
    public void InvalidAddress_IsRefusedWithTheProblem(string address, string problem)
    {
        Assert.False(Addresses.TryCanonicalize(address, out var canonical, out var actual));

        Assert.Null(canonical);
        Assert.Equal(problem, actual);
    }

    [Fact]
    public void LoneSurrogate_IsRefused()
    {
        // Not as InlineData: attribute strings are stored as UTF-8, where a lone surrogate becomes U+FFFD.
        Assert.False(Addresses.TryCanonicalize("a\ud800b@example.com", out _, out var problem));
        Assert.Equal("the local part is not valid UTF-16 text", problem);
        Assert.False(Addresses.TryCanonicalize("a@b\udc00.com", out _, out problem));
        Assert.Equal("the domain is not a valid internationalised domain name", problem);
    }

    [Fact]
    public void LocalPart_IsLimitedTo64OctetsOfUtf8_NotTo64Characters()
    {
        var fits = new string('ö', 32) + "@example.com";
        var tooLong = new string('ö', 33) + "@example.com";

        Assert.True(Addresses.TryCanonicalize(fits, out _, out _));
        Assert.False(Addresses.TryCanonicalize(tooLong, out _, out var problem));
        Assert.Equal("the local part is longer than 64 octets", problem);
        Assert.False(Addresses.TryCanonicalize(new string('a', 65) + "@example.com", out _, out _));
    }

    [Fact]
    public void Address_IsLimitedTo254Octets_DomainIncluded()
    {
        var domain = string.Join('.', new string('a', 63), new string('b', 63), new string('c', 63), "com");

        Assert.True(Addresses.TryCanonicalize(new string('x', 58) + "@" + domain, out var fits, out _));
        Assert.Equal(254, Encoding.UTF8.GetByteCount(fits));
        Assert.False(Addresses.TryCanonicalize(new string('x', 59) + "@" + domain, out _, out var problem));
        Assert.Equal("it is longer than 254 octets", problem);
    }

    [Fact]
    public void DomainLabel_LongerThan63Octets_IsRefused()
    {
        Assert.False(Addresses.TryCanonicalize("a@" + new string('a', 64) + ".com", out _, out var problem));
        Assert.Equal("the domain is not a valid domain name", problem);
    }

    [Theory]
    [InlineData("jörg@example.com", true)]
    [InlineData("jörg@xn--bcher-kva.de", true)]
    [InlineData("用户@xn--fsqu00a.xn--4rr70v", true)]
    [InlineData("bob@xn--bcher-kva.de", false)]
    [InlineData("bob@example.com", false)]
    // MimeKit's form of an address keeps the domain decoded; the domain never needs SMTPUTF8.
    [InlineData("bob@bücher.de", false)]
    public void NeedsSmtpUtf8_ExactlyWhenTheLocalPartIsNotAscii(string address, bool expected)
    {
        Assert.Equal(expected, Addresses.NeedsSmtpUtf8(address));
    }

    [Fact]
    public void NeedsSmtpUtf8_OfSomethingWithoutAnAt_IsABug()
    {
        Assert.Throws<ArgumentException>(() => Addresses.NeedsSmtpUtf8("bob"));
    }

    [Fact]
    public void MangledAddresses_NeverThrow_AndWhatPassesIsCanonical()
    {
        // Random strings over characters that matter to the rules, with a fixed seed so a failure repeats.
        const string alphabet = "ab.-_@xn--ÜüöｅＢ．。①ß\u0308\u200d\u202e\u00a0 \"\r\n\0\ud800\udc00😀例";
        var random = new Random(20250316);

        for (var i = 0; i < 5000; i++)
        {
            var text = new StringBuilder();
            for (var length = random.Next(0, 24); length > 0; length--)
                text.Append(alphabet[random.Next(alphabet.Length)]);

            if (Addresses.TryCanonicalize(text.ToString(), out var canonical, out var problem))
            {
                Assert.Null(problem);
                var domain = canonical[(canonical.LastIndexOf('@') + 1)..];
                Assert.True(Ascii.IsValid(domain), canonical);
                Assert.Equal(domain.ToLowerInvariant(), domain);
                Assert.True(Addresses.TryCanonicalize(canonical, out var again, out _), canonical);
                Assert.Equal(canonical, again);
            }
            else
            {
                Assert.False(string.IsNullOrEmpty(problem));
            }
        }
    }
}
