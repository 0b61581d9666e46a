using System.Text.RegularExpressions;

namespace Ion.Delivery;

/// <summary>Reads RFC 3463 enhanced status codes (<c>5.1.1</c>) from an SMTP reply text.</summary>
internal static partial class SmtpReply
{
    [GeneratedRegex(@"^\s*([245]\.\d{1,3}\.\d{1,3})(?:\s|$)", RegexOptions.CultureInvariant)]
    private static partial Regex EnhancedCode();

    public static string? ParseEnhancedCode(string? text)
    {
        if (string.IsNullOrEmpty(text))
            return null;
        var match = EnhancedCode().Match(text);
        return match.Success ? match.Groups[1].Value : null;
    }
}
