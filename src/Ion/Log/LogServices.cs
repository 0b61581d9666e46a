using Ion.Queues;

namespace Ion.Log;

public static class LogServices
{
    /// <summary>The delivery log, in the SQLite file the queue uses (see <see cref="QueueServices.AddQueues"/>).</summary>
    public static IServiceCollection AddDeliveryLog(this IServiceCollection services)
    {
        services.AddSingleton<DeliveryLog>();
        return services;
    }
}
