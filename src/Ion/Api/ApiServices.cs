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

    /// <summary>Health is open; everything else needs the bearer token, or, without a token, a loopback caller.</summary>
    public static WebApplication UseApi(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        var token = app.Services.GetRequiredService<IOptions<ApiOptions>>().Value.Token;
        var expected = string.IsNullOrEmpty(token) ? null : Encoding.UTF8.GetBytes(token);
        var metricsOnLoopback = app.Services.GetRequiredService<IOptions<MetricsOptions>>().Value.OpenOnLoopback;
        app.Use(async (context, next) =>
        {
            var path = context.Request.Path;
            if (path.StartsWithSegments("/healthz") || path.StartsWithSegments("/readyz") || IsAllowed(context, expected)
                || (metricsOnLoopback && path.StartsWithSegments(MetricsApi.Path) && IsLoopback(context))
                || (expected is not null && DashboardApi.IsPage(path)))
            {
                await next(context);
                return;
            }
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await Results.Problem(
                statusCode: StatusCodes.Status401Unauthorized,
                title: "Unauthorized",
                detail: expected is null ? "ion only answers loopback callers when Ion:Api:Token is not set" : "a valid 'Authorization: Bearer <Ion:Api:Token>' header is required")
                .ExecuteAsync(context);
        });
        return app;
    }

    private static bool IsLoopback(HttpContext context) => context.Connection.RemoteIpAddress is { } ip && IPAddress.IsLoopback(ip);

    private static bool IsAllowed(HttpContext context, byte[]? expected)
    {
        if (expected is null)
            return IsLoopback(context);
        var header = context.Request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            return false;
        var given = Encoding.UTF8.GetBytes(header[scheme.Length..].Trim());
        return CryptographicOperations.FixedTimeEquals(given, expected);
    }
}
