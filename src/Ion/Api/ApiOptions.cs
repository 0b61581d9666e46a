using Microsoft.Extensions.Options;

namespace Ion.Api;

/// <summary>The <c>Ion:Api</c> section.</summary>
public sealed class ApiOptions
{
    public const string Section = "Ion:Api";

    /// <summary>The bearer token every route but health requires. Without one, ion serves loopback only.</summary>
    public string? Token { get; set; }
}

/// <summary>Without a token, ion must not listen where other machines can reach it.</summary>
internal sealed class ApiOptionsValidator(IConfiguration configuration) : IValidateOptions<ApiOptions>
{
    public ValidateOptionsResult Validate(string? name, ApiOptions options)
    {
        if (!string.IsNullOrEmpty(options.Token))
        {
            return options.Token.Length >= 16
                ? ValidateOptionsResult.Success
                : ValidateOptionsResult.Fail("Ion:Api:Token must be at least 16 characters");
        }
        var urls = configuration["urls"] ?? "";
        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var host = Uri.TryCreate(url.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri)
                ? uri.Host
                : url;
            if (!Settings.IsLoopback(host))
                return ValidateOptionsResult.Fail($"Ion:Api:Token is not set, so ion may only listen on loopback, but Urls has '{url}': set a token or listen on 127.0.0.1");
        }
        return ValidateOptionsResult.Success;
    }
}
