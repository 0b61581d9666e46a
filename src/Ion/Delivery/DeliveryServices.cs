namespace Ion.Delivery;

public static class DeliveryServices
{
    /// <summary>The worker and what it needs: only <c>ion serve</c> delivers, so only it requires a relay.</summary>
    public static IServiceCollection AddDelivery(this IServiceCollection services)
    {
        services.AddSettings<SmtpOptions, SmtpOptionsValidator>(SmtpOptions.Section);
        services.AddSingleton<RelayCircuit>();
        services.AddHostedService<DeliveryWorker>();
        return services;
    }
}
