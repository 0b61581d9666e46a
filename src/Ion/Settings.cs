using System.Net;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Ion;

/// <summary>Binding and start-up validation shared by every options class: a bad setting stops ion with a
/// message that names the setting (<c>Ion:Smtp:Port must be …</c>).</summary>
internal static class Settings
{
    public static OptionsBuilder<T> AddSettings<T, TValidator>(this IServiceCollection services, string section)
        where T : class
        where TValidator : class, IValidateOptions<T>
    {
        services.AddSingleton<IValidateOptions<T>, TValidator>();
        return services.AddOptions<T>().BindConfiguration(section).ValidateOnStart();
    }

    public static bool IsPlainAddress(string? value) =>
        !string.IsNullOrWhiteSpace(value)
        && value.IndexOfAny(['\r', '\n', ' ', '<', '>', ',']) < 0
        && MailboxAddress.TryParse(value, out var mailbox)
        && mailbox.Address == value
        && value.IndexOf('@', StringComparison.Ordinal) is > 0 and var at
        && at < value.Length - 1;

    public static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
}
