using System.Net;
using Microsoft.Extensions.Options;

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

    public static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
}
