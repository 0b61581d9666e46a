namespace Ion.Queues;

public static class QueueServices
{
    /// <summary>What every store shares: publishing and redrive. The store itself (<c>Ion:Store</c>) is registered
    /// by <see cref="IonApp"/>.</summary>
    public static IServiceCollection AddQueues(this IServiceCollection services)
    {
        services.AddMetrics();
        services.AddOptions<MetricsOptions>().BindConfiguration(MetricsOptions.Section).Checked<MetricsOptions, MetricsOptionsValidator>();
        services.AddSingleton<QueueGauges>();
        services.AddSingleton<StoreHealth>();
        services.AddSingleton<IonMetrics>();
        services.AddSingleton<Publisher>();
        services.AddSingleton<Redriver>();
        return services;
    }
}
