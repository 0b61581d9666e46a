using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Ion.Api;

/// <summary>
/// <c>GET /metrics</c>: the <c>Ion</c> meter (<see cref="IonMetrics"/>) in the Prometheus text format, through
/// OpenTelemetry's Prometheus exporter. Instrument names become Prometheus names the usual way: <c>ion.messages.sent</c>
/// → <c>ion_messages_sent_total</c>, <c>ion.smtp.send.duration</c> (seconds) → <c>ion_smtp_send_duration_seconds</c>.
/// The API's token rule applies, unless <c>Ion:Metrics:OpenOnLoopback</c> lets a scraper on this machine in.
/// </summary>
public static class MetricsApi
{
    public const string Path = "/metrics";

    public static WebApplicationBuilder AddMetricsApi(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        // The queue's gauges are read in the background by the server only (the CLI never runs it).
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Queues.QueueGauges>());
        if (Enabled(builder.Configuration))
        {
            builder.Services.AddOpenTelemetry()
                .ConfigureResource(resource => resource.AddService("ion"))
                .WithMetrics(metrics => metrics.AddMeter(IonMetrics.MeterName).AddPrometheusExporter());
        }
        return builder;
    }

    public static WebApplication MapMetricsApi(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        if (app.Services.GetRequiredService<IOptions<MetricsOptions>>().Value.Enabled)
            app.MapPrometheusScrapingEndpoint(Path);
        return app;
    }

    // Read before the options exist (services are being registered); the options validate the same value later.
    private static bool Enabled(ConfigurationManager configuration) =>
        !bool.TryParse(configuration[$"{MetricsOptions.Section}:Enabled"], out var enabled) || enabled;
}
