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
        services.AddSingleton(sp => new RelayCircuit(sp.GetRequiredService<TimeProvider>(), Options(sp), random));
        services.AddSingleton(sp => new SendRate(Options(sp).RatePerSecond, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<RefusalStreak>();
        services.AddSingleton(sp => new HeldMessages(
            sp.GetRequiredService<IMessageQueue>(), Options(sp).VisibilityTimeout, sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<HeldMessages>>()));
        services.AddSingleton(sp => new DeliveryDecision(DeliveryPolicy.From(Options(sp)), random));
        services.AddSingleton<BatchDelivery>();
        services.AddHostedService<DeliveryWorker>();
        return services;
    }

    private static DeliveryOptions Options(IServiceProvider services) => services.GetRequiredService<IOptions<DeliveryOptions>>().Value;
}
