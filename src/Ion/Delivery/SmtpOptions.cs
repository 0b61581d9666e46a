using Microsoft.Extensions.Options;

namespace Ion.Delivery;

public enum SmtpSecurity
{
    /// <summary>Plain connection upgraded with STARTTLS; refuse to go on without it (port 587).</summary>
    StartTls,
    /// <summary>TLS from the first byte (port 465).</summary>
    SslOnConnect,
    /// <summary>No TLS: only to a relay on this machine unless <see cref="SmtpOptions.AllowInsecure"/> says otherwise.</summary>
    None,
}

/// <summary>The <c>Ion:Smtp</c> section: the relay every message goes through.</summary>
public sealed class SmtpOptions
{
    public const string Section = "Ion:Smtp";

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
}

internal sealed class SmtpOptionsValidator : IValidateOptions<SmtpOptions>
{
    public ValidateOptionsResult Validate(string? name, SmtpOptions o)
    {
        List<string> errors = [];
        if (string.IsNullOrWhiteSpace(o.Host))
            errors.Add("Ion:Smtp:Host is not set: name the SMTP relay (see README, 'Pointing ion at a real relay')");
        if (o.Port is < 1 or > 65535)
            errors.Add($"Ion:Smtp:Port must be between 1 and 65535 (is {o.Port})");
        if (o.Security == SmtpSecurity.None && !o.AllowInsecure && !string.IsNullOrWhiteSpace(o.Host) && !Settings.IsLoopback(o.Host))
            errors.Add($"Ion:Smtp:Security is None but Ion:Smtp:Host '{o.Host}' is not on this machine: use StartTls or SslOnConnect, or set Ion:Smtp:AllowInsecure=true");
        if (o.HasCredentials && string.IsNullOrEmpty(o.Password))
            errors.Add("Ion:Smtp:Password is not set but Ion:Smtp:Username is (set Ion__Smtp__Password in the environment or the secrets file)");
        if (o.CertificateSha256 is { } pin && (pin.Replace(":", "", StringComparison.Ordinal).Length != 64 || !pin.Replace(":", "", StringComparison.Ordinal).All(Uri.IsHexDigit)))
            errors.Add("Ion:Smtp:CertificateSha256 must be 64 hex digits");
        foreach (var (key, value) in new[] { ("ConnectTimeout", o.ConnectTimeout), ("CommandTimeout", o.CommandTimeout), ("IdleTimeout", o.IdleTimeout) })
        {
            if (value <= TimeSpan.Zero || value > TimeSpan.FromHours(1))
                errors.Add($"Ion:Smtp:{key} must be between 00:00:00.001 and 01:00:00 (is {value})");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
