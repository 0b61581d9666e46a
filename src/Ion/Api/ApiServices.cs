using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Ion.Api;

public static class ApiServices
{
    public static WebApplicationBuilder AddApi(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<ApiOptions>().BindConfiguration(ApiOptions.Section).Checked<ApiOptions, ApiOptionsValidator>();
        builder.Services.AddOptions<FeedbackOptions>().BindConfiguration(FeedbackOptions.Section).Checked<FeedbackOptions, FeedbackOptionsValidator>();
        builder.Services.AddProblemDetails();
        builder.Services.AddExceptionHandler<StoreExceptionHandler>();
        builder.Services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            json.SerializerOptions.DictionaryKeyPolicy = JsonNamingPolicy.SnakeCaseLower;
        });
        // The messages API reads the body itself against Ion:MaxMessageBytes (413 with a clear reason); Kestrel's
        // own cap is only a backstop just above it.
        builder.Services.AddOptions<KestrelServerOptions>().Configure<IOptions<IonOptions>>((kestrel, ion) =>
            kestrel.Limits.MaxRequestBodySize = ion.Value.MaxMessageBytes + 1);
        return builder;
    }

    /// <summary>Health is open; everything else needs the bearer token, or, without a token, a loopback caller. The
    /// feedback routes also open to <c>Ion:Feedback:Token</c>.</summary>
    public static WebApplication UseApi(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        var token = app.Services.GetRequiredService<IOptions<ApiOptions>>().Value.Token;
        var expected = string.IsNullOrEmpty(token) ? null : Encoding.UTF8.GetBytes(token);
        var feedbackToken = app.Services.GetRequiredService<IOptions<FeedbackOptions>>().Value.Token;
        var feedbackExpected = string.IsNullOrEmpty(feedbackToken) ? null : Encoding.UTF8.GetBytes(feedbackToken);
        var metricsOnLoopback = app.Services.GetRequiredService<IOptions<MetricsOptions>>().Value.OpenOnLoopback;
        app.Use(async (context, next) =>
        {
            var path = context.Request.Path;
            if (path.StartsWithSegments("/healthz") || path.StartsWithSegments("/readyz") || IsAllowed(context, expected)
                || (metricsOnLoopback && path.StartsWithSegments(MetricsApi.Path) && IsLoopback(context))
                || (expected is not null && DashboardApi.IsPage(path))
                || (feedbackExpected is not null && path.StartsWithSegments(FeedbackApi.Path) && HasFeedbackToken(context, feedbackExpected)))
            {
                await next(context);
                return;
            }
            var feedback = feedbackExpected is not null && path.StartsWithSegments(FeedbackApi.Path);
            context.Response.Headers.WWWAuthenticate = feedback ? "Bearer, Basic realm=\"ion feedback\"" : "Bearer";
            await Results.Problem(
                statusCode: StatusCodes.Status401Unauthorized,
                title: "Unauthorized",
                detail: feedback ? "Ion:Feedback:Token is required, as the basic-auth password (https://ion:TOKEN@host/…) or a bearer token"
                    : expected is null ? "ion only answers loopback callers when Ion:Api:Token is not set"
                    : "a valid 'Authorization: Bearer <Ion:Api:Token>' header is required")
                .ExecuteAsync(context);
        });
        return app;
    }

    private static bool IsLoopback(HttpContext context) => context.Connection.RemoteIpAddress is { } ip && IPAddress.IsLoopback(ip);

    // Basic (the password; the user name is anyone's) or Bearer. Not the query string: it ends up in access logs and
    // proxies' logs, and SNS keeps a basic-auth password out of what it shows of the subscription.
    private static bool HasFeedbackToken(HttpContext context, byte[] expected)
    {
        var header = context.Request.Headers.Authorization.ToString();
        const string basic = "Basic ";
        if (!header.StartsWith(basic, StringComparison.OrdinalIgnoreCase))
            return Matches(header, expected);
        Span<byte> decoded = stackalloc byte[512];
        if (!Convert.TryFromBase64String(header[basic.Length..].Trim(), decoded, out var length))
            return false;
        var colon = decoded[..length].IndexOf((byte)':');
        return colon >= 0 && CryptographicOperations.FixedTimeEquals(decoded[(colon + 1)..length], expected);
    }

    private static bool IsAllowed(HttpContext context, byte[]? expected)
    {
        if (expected is null)
            return IsLoopback(context);
        return Matches(context.Request.Headers.Authorization.ToString(), expected);
    }

    private static bool Matches(string authorization, byte[] expected)
    {
        const string scheme = "Bearer ";
        if (!authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            return false;
        var given = Encoding.UTF8.GetBytes(authorization[scheme.Length..].Trim());
        return CryptographicOperations.FixedTimeEquals(given, expected);
    }
}
