using Ion.Delivery;
using Microsoft.Extensions.Options;

namespace Ion.Queues;

public static class QueueServices
{
    /// <summary>The embedded SQLite queue in <c>Ion:DataDirectory</c>.</summary>
    public static IServiceCollection AddQueues(this IServiceCollection services)
    {
        services.AddSingleton<IMessageQueue>(sp =>
        {
            var ion = sp.GetRequiredService<IOptions<IonOptions>>().Value;
            Directory.CreateDirectory(Path.GetDirectoryName(ion.DatabasePath)!);
            return new SqliteQueue(
                new SqliteQueueOptions
                {
                    DatabasePath = ion.DatabasePath,
                    VisibilityTimeout = sp.GetRequiredService<IOptions<DeliveryOptions>>().Value.VisibilityTimeout,
                    ReceiveWaitTime = sp.GetRequiredService<IOptions<DeliveryOptions>>().Value.PollInterval,
                },
                sp.GetRequiredService<TimeProvider>());
        });
        services.AddSingleton<Publisher>();
        services.AddSingleton<Redriver>();
        return services;
    }
}
