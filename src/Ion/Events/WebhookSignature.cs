using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Ion.Events;

/// <summary>
/// How ion signs a webhook request, as Standard Webhooks (the scheme of Svix; Stripe's is the same idea): headers
/// <c>webhook-id</c>, <c>webhook-timestamp</c> (unix seconds) and <c>webhook-signature: v1,BASE64</c>, where BASE64 is
/// the HMAC-SHA256, keyed with the secret, of <c>{id}.{timestamp}.{body}</c>. A receiver recomputes it over the raw body
/// and refuses a timestamp more than a few minutes old (a replay).
/// </summary>
public static class WebhookSignature
{
    public const string KeyPrefix = "whsec_";

    /// <summary>The key bytes of a configured secret: <c>whsec_</c> + base64 as those bytes, otherwise its UTF-8.</summary>
    public static byte[]? Key(string secret)
    {
        ArgumentNullException.ThrowIfNull(secret);
        if (!secret.StartsWith(KeyPrefix, StringComparison.Ordinal))
            return Encoding.UTF8.GetBytes(secret);
        try
        {
            return Convert.FromBase64String(secret[KeyPrefix.Length..]);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>The <c>webhook-signature</c> header's value.</summary>
    public static string Sign(byte[] key, string id, DateTimeOffset timestamp, ReadOnlySpan<byte> body)
    {
        ArgumentNullException.ThrowIfNull(key);
        var prefix = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{id}.{timestamp.ToUnixTimeSeconds()}."));
        var signed = new byte[prefix.Length + body.Length];
        prefix.CopyTo(signed, 0);
        body.CopyTo(signed.AsSpan(prefix.Length));
        return "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, signed));
    }
}
