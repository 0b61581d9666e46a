using Ion.Delivery;
using Microsoft.Extensions.Options;

namespace Ion.Queues;

public static class QueueServices
{
    /// <summary>The embedded SQLite queue in <c>Ion:DataDirectory</c>, and the file it shares with the delivery log.</summary>
    public static IServiceCollection AddQueues(this IServiceCollection services)
    {
        services.AddSingleton(sp => new SqliteDatabase(sp.GetRequiredService<IOptions<IonOptions>>().Value.DatabasePath));
        services.AddSingleton<IMessageQueue>(sp =>
        {
            var delivery = sp.GetRequiredService<IOptions<DeliveryOptions>>().Value;
            return new SqliteQueue(
                sp.GetRequiredService<SqliteDatabase>(),
                new SqliteQueueOptions { VisibilityTimeout = delivery.VisibilityTimeout, ReceiveWaitTime = delivery.PollInterval },
                sp.GetRequiredService<TimeProvider>());
        });
        services.AddSingleton<Publisher>();
        services.AddSingleton<Redriver>();
        return services;
    }
}
