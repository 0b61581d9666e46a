using System.Diagnostics.CodeAnalysis;
using System.Net;
using Microsoft.Extensions.Options;

namespace Ion;

/// <summary>Binding and start-up validation shared by every options class: a bad setting stops ion with a
/// message that names the setting (<c>Ion:Smtp:Port must be …</c>).</summary>
internal static class Settings
{
    /// <summary>Adds the validator and checks at start. Bind at the call site
    /// (<c>AddOptions&lt;SmtpOptions&gt;().BindConfiguration(SmtpOptions.Section).Checked&lt;…&gt;()</c>): the
    /// configuration binding generator writes the binding there, for a concrete type, instead of reflection, which
    /// the NativeAOT Lambda has not. The annotations keep the constructors in a trimmed build.</summary>
    public static OptionsBuilder<T> Checked<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] T,
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TValidator>(
        this OptionsBuilder<T> options)
        where T : class
        where TValidator : class, IValidateOptions<T>
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Services.AddSingleton<IValidateOptions<T>, TValidator>();
        return options.ValidateOnStart();
    }

    public static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
}
