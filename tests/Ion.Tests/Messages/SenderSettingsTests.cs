namespace Ion.Tests.Messages;

/// <summary>Ion:DefaultSender and Ion:AllowedSenders follow the rules a message's from does.</summary>
public class SenderSettingsTests
{
    static IReadOnlyList<string> Errors(string defaultSender, params string[] allowedSenders)
    {
        var options = new IonOptions { DefaultSender = defaultSender, AllowedSenders = [.. allowedSenders] };
        var result = new IonOptionsValidator().Validate(null, options);
        return result.Failed ? [.. result.Failures] : [];
    }

    [Theory]
    [InlineData("ion@example.com")]
    [InlineData("ion@bücher.de")]
    [InlineData("ion@BÜCHER.DE")]
    [InlineData("ion@xn--bcher-kva.de")]
    public void DefaultSender_WithAnAsciiLocalPart_IsValid_WhateverItsDomain(string sender)
    {
        Assert.Empty(Errors(sender));
    }

    [Fact]
    public void DefaultSender_WithANonAsciiLocalPart_IsRefused_NamingTheSetting()
    {
        var error = Assert.Single(Errors("jörg@example.com"));

        Assert.StartsWith("Ion:DefaultSender must be an email address with an ASCII local part (is 'jörg@example.com'", error, StringComparison.Ordinal);
        Assert.Contains("SMTPUTF8", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ion@xn--bcher-2pa.de", "the domain is not a valid internationalised domain name")]
    [InlineData("not-an-address", "it has no @")]
    [InlineData("", "it is empty")]
    public void DefaultSender_ThatIsNoAddress_IsRefusedWithTheProblem(string sender, string problem)
    {
        var error = Assert.Single(Errors(sender));

        Assert.StartsWith("Ion:DefaultSender ", error, StringComparison.Ordinal);
        Assert.Contains(problem, error, StringComparison.Ordinal);
    }

    [Fact]
    public void AllowedSenders_InEitherIdnForm_AreValid()
    {
        Assert.Empty(Errors("ion@example.com", "@bücher.de", "@XN--BCHER-KVA.DE", "news@ＢÜＣＨＥＲ.de", "@mail.example.org"));
    }

    [Theory]
    [InlineData("jörg@example.com", "its local part is not ASCII")]
    [InlineData("@xn--bcher-2pa.de", "the domain is not a valid internationalised domain name")]
    [InlineData("@exa_mple.com", "the domain is not a valid domain name")]
    [InlineData("@", "the domain is empty")]
    [InlineData("news", "it has no @")]
    public void AllowedSender_ThatIsNeitherASenderNorADomain_IsRefused_NamingTheSetting(string allowed, string problem)
    {
        var error = Assert.Single(Errors("ion@example.com", "news@example.com", allowed));

        Assert.StartsWith($"Ion:AllowedSenders: '{allowed}' is neither a sender address nor an @domain entry (", error, StringComparison.Ordinal);
        Assert.Contains(problem, error, StringComparison.Ordinal);
    }
}
