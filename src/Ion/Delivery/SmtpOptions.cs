using Microsoft.Extensions.Options;

namespace Ion.Delivery;

public enum SmtpSecurity
{
    /// <summary>Plain connection upgraded with STARTTLS; refuse to go on without it (port 587).</summary>
    StartTls,
    /// <summary>TLS from the first byte (port 465).</summary>
    SslOnConnect,
    /// <summary>No TLS: only to a relay on this machine unless <see cref="RelayOptions.AllowInsecure"/> says otherwise.</summary>
    None,
}

/// <summary>How to reach one relay and sign in: the shape <c>Ion:Smtp</c> and <c>Ion:Smtp:Fallback</c> share.</summary>
public abstract class RelayOptions
{
    public string Host { get; set; } = "";
    public int Port { get; set; } = 587;
    public SmtpSecurity Security { get; set; } = SmtpSecurity.StartTls;
    /// <summary>Allows <see cref="SmtpSecurity.None"/> to a relay off this machine: passwords and mail in clear text.</summary>
    public bool AllowInsecure { get; set; }
    public string? Username { get; set; }
    public string? Password { get; set; }
    /// <summary>Accept exactly this certificate (SHA-256 hex), e.g. a relay with a self-signed certificate.
    /// Without it the certificate must chain to a trusted root and match the host name.</summary>
    public string? CertificateSha256 { get; set; }
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(30);
    /// <summary>How long one SMTP command (and the message data) may take.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(60);
    /// <summary>A connection unused for longer is closed and opened again before the next message, since relays
    /// drop idle connections and a drop found mid-message would cost the message an attempt.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(30);
    /// <summary>The name given in EHLO; the machine's name when empty.</summary>
    public string? ClientName { get; set; }

    public bool HasCredentials => !string.IsNullOrEmpty(Username);

    /// <summary>What is wrong with these settings, each naming its key under <paramref name="section"/>.</summary>
    internal List<string> Problems(string section)
    {
        List<string> errors = [];
        if (Port is < 1 or > 65535)
            errors.Add($"{section}:Port must be between 1 and 65535 (is {Port})");
        if (Security == SmtpSecurity.None && !AllowInsecure && !string.IsNullOrWhiteSpace(Host) && !Settings.IsLoopback(Host))
            errors.Add($"{section}:Security is None but {section}:Host '{Host}' is not on this machine: use StartTls or SslOnConnect, or set {section}:AllowInsecure=true");
        if (HasCredentials && string.IsNullOrEmpty(Password))
            errors.Add($"{section}:Password is not set but {section}:Username is (set {section.Replace(":", "__", StringComparison.Ordinal)}__Password in the environment or the secrets file)");
        if (CertificateSha256 is { } pin && (pin.Replace(":", "", StringComparison.Ordinal).Length != 64 || !pin.Replace(":", "", StringComparison.Ordinal).All(Uri.IsHexDigit)))
            errors.Add($"{section}:CertificateSha256 must be 64 hex digits");
        foreach (var (key, value) in new[] { ("ConnectTimeout", ConnectTimeout), ("CommandTimeout", CommandTimeout), ("IdleTimeout", IdleTimeout) })
        {
            if (value <= TimeSpan.Zero || value > TimeSpan.FromHours(1))
                errors.Add($"{section}:{key} must be between 00:00:00.001 and 01:00:00 (is {value})");
        }
        return errors;
    }
}

/// <summary>The <c>Ion:Smtp</c> section: the relay every message goes through, and the one to use when it cannot
/// (<see cref="Fallback"/>).</summary>
public sealed class SmtpOptions : RelayOptions
{
    public const string Section = "Ion:Smtp";

    public FallbackRelayOptions Fallback { get; set; } = new();
}

/// <summary>The <c>Ion:Smtp:Fallback</c> section: a second relay, as Postfix's <c>fallback_relay</c>. Unused without a
/// <see cref="RelayOptions.Host"/>.</summary>
public sealed class FallbackRelayOptions : RelayOptions
{
    public const string Section = SmtpOptions.Section + ":Fallback";
    public const int DefaultAfterDeferrals = 3;

    /// <summary>A message deferred this many times goes through the fallback from then on, while the fallback is up
    /// (greylisting or a full mailbox seen through another relay, or a primary that keeps failing one domain); 0:
    /// the fallback only carries mail while the primary is down.</summary>
    public int AfterDeferrals { get; set; } = DefaultAfterDeferrals;

    public bool IsSet => !string.IsNullOrWhiteSpace(Host);
}

internal sealed class SmtpOptionsValidator : IValidateOptions<SmtpOptions>
{
    public ValidateOptionsResult Validate(string? name, SmtpOptions o)
    {
        List<string> errors = [];
        if (string.IsNullOrWhiteSpace(o.Host))
            errors.Add("Ion:Smtp:Host is not set: name the SMTP relay (see README, 'Pointing ion at a real relay')");
        errors.AddRange(o.Problems(SmtpOptions.Section));
        var fallback = o.Fallback;
        if (fallback.AfterDeferrals < 0)
            errors.Add($"{FallbackRelayOptions.Section}:AfterDeferrals must be 0 (only while the primary is down) or more (is {fallback.AfterDeferrals})");
        if (fallback.IsSet)
        {
            errors.AddRange(fallback.Problems(FallbackRelayOptions.Section));
            if (string.Equals(fallback.Host.Trim(), o.Host.Trim(), StringComparison.OrdinalIgnoreCase) && fallback.Port == o.Port)
                errors.Add($"{FallbackRelayOptions.Section}:Host and Port name the same relay as Ion:Smtp ({o.Host}:{o.Port}): a fallback must be another relay");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
