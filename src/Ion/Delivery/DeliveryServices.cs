using System.Globalization;
using Ion.Log;
using Ion.Queues;
using Microsoft.Extensions.Options;

namespace Ion.Delivery;

public static class DeliveryServices
{
    /// <summary>The worker and what it needs: only <c>ion serve</c> delivers, so only it requires a relay.</summary>
    public static IServiceCollection AddDelivery(this IServiceCollection services)
    {
        services.AddOptions<SmtpOptions>().BindConfiguration(SmtpOptions.Section).Checked<SmtpOptions, SmtpOptionsValidator>();
        // Jitter for backoffs and probe pauses; injected so that the decision and the circuit stay exact in tests.
        Func<double> random = Random.Shared.NextDouble;
        services.AddSingleton(sp => new Relays(sp.GetRequiredService<IOptions<SmtpOptions>>().Value, Options(sp), sp.GetRequiredService<TimeProvider>(), random));
        services.AddSingleton(sp => new SendRate(Options(sp).RatePerSecond, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<RefusalStreak>();
        services.AddSingleton(sp => new HeldMessages(
            sp.GetRequiredService<IMessageQueue>(), Options(sp).VisibilityTimeout, sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<HeldMessages>>()));
        services.AddSingleton(sp => new DeliveryDecision(DeliveryPolicy.From(Options(sp)), random));
        services.AddSingleton<BatchDelivery>();
        services.AddHostedService<DeliveryWorker>();
        // ion serve's stop must outlast what a slot may still be doing when it is asked to stop: a send under way is
        // never cut (stopping mid-DATA would make a duplicate likely), and the relay's reply to it may take up to
        // Ion:Smtp:CommandTimeout (or the fallback's). Read from the configuration, not the validated options, so that a
        // bad setting is still reported with the others when the host starts.
        services.AddOptions<HostOptions>().Configure<IConfiguration>((host, configuration) =>
        {
            host.AllowStopFor(CommandTimeout(configuration, SmtpOptions.Section));
            if (!string.IsNullOrWhiteSpace(configuration[$"{FallbackRelayOptions.Section}:{nameof(RelayOptions.Host)}"]))
                host.AllowStopFor(CommandTimeout(configuration, FallbackRelayOptions.Section));
        });
        return services;
    }

    /// <summary>Raises the host's shutdown timeout so that a slot busy for <paramref name="busy"/> when the stop is
    /// asked can finish and give back what it holds (<see cref="DeliveryWorker.StopMargin"/> more). Only ever raised:
    /// a longer timeout the operator set (<c>shutdownTimeoutSeconds</c>) stands.</summary>
    public static void AllowStopFor(this HostOptions host, TimeSpan busy)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (host.ShutdownTimeout < busy + DeliveryWorker.StopMargin)
            host.ShutdownTimeout = busy + DeliveryWorker.StopMargin;
    }

    private static TimeSpan CommandTimeout(IConfiguration configuration, string section) =>
        TimeSpan.TryParse(configuration[$"{section}:{nameof(RelayOptions.CommandTimeout)}"], CultureInfo.InvariantCulture, out var reply)
            ? reply
            : new SmtpOptions().CommandTimeout;

    private static DeliveryOptions Options(IServiceProvider services) => services.GetRequiredService<IOptions<DeliveryOptions>>().Value;
}
