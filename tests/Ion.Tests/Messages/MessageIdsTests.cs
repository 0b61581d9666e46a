using Ion.Messages;
using MimeKit;

namespace Ion.Tests.Messages;

public class MessageIdsTests
{
    [Fact]
    public void New_GivesDistinct32HexDigitIds()
    {
        var first = MessageIds.New();
        var second = MessageIds.New();

        Assert.Matches("^[0-9a-f]{32}$", first);
        Assert.NotEqual(first, second);
    }

    [Fact]
    public void MessageIdHeader_IsStableForTheSameIdAndDomain()
    {
        Assert.Equal(
            MessageIds.MessageIdHeader("order-42", "example.com"),
            MessageIds.MessageIdHeader("order-42", "Example.COM"));
    }

    [Fact]
    public void MessageIdHeader_FollowsTheDocumentedRule()
    {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        Assert.Equal("ion.ba7816bf8f01cfea414140de5dae2223@example.com", MessageIds.MessageIdHeader("abc", "example.com"));
    }

    [Fact]
    public void MessageIdHeader_DiffersForDifferentIds()
    {
        Assert.NotEqual(
            MessageIds.MessageIdHeader("order-42", "example.com"),
            MessageIds.MessageIdHeader("order-43", "example.com"));
    }

    [Theory]
    [InlineData("plain", "example.com", "example.com")]
    [InlineData("with spaces <and> \"quotes\"\r\n", "example.com", "example.com")]
    [InlineData("a/b=c@d:e", "mail.example.org", "mail.example.org")]
    [InlineData("\ud800 lone surrogate", "example.com", "example.com")]
    [InlineData("", "example.com", "example.com")]
    [InlineData("x", "bücher.de", "xn--bcher-kva.de")]
    [InlineData("x", "BÜCHER.DE", "xn--bcher-kva.de")]
    [InlineData("x", "XN--BCHER-KVA.DE", "xn--bcher-kva.de")]
    [InlineData("x", "ｅxample.com", "example.com")]
    [InlineData("x", "xn--bcher-2pa.de", "ion.invalid")]
    [InlineData("x", "example.com.", "ion.invalid")]
    [InlineData("x", "", "ion.invalid")]
    [InlineData("x", "bad domain", "ion.invalid")]
    [InlineData("x", "[127.0.0.1]", "ion.invalid")]
    public void MessageIdHeader_IsAValidMsgIdForAnyInput(string id, string domain, string expectedDomain)
    {
        var messageId = MessageIds.MessageIdHeader(id, domain);

        Assert.Matches("^ion\\.[0-9a-f]{32}@", messageId);
        Assert.EndsWith("@" + expectedDomain, messageId, StringComparison.Ordinal);
        var message = new MimeMessage { MessageId = messageId };
        Assert.Equal(messageId, message.MessageId);
    }

    [Theory]
    [InlineData("custom-message-ID", false)]
    [InlineData("ion.0123456789ABCDEF0123456789abcdef@test.example", false)]
    [InlineData("ion.0123456789abcdef0123456789abcde@test.example", false)]
    [InlineData("ion.0123456789abcdef0123456789abcdef@", false)]
    [InlineData("20260310100001.4A2B3C0D1E@mail.y.example", false)]
    public void IsIons_KnowsOnlyItsOwnForm(string messageId, bool ions) => Assert.Equal(ions, MessageIds.IsIons(messageId));

    [Fact]
    public void IsIons_KnowsEveryMessageIdItGives() =>
        Assert.All(new[] { "a", "order/17", "ü" }, id => Assert.True(MessageIds.IsIons(MessageIds.MessageIdHeader(id, "Bücher.example"))));
}
