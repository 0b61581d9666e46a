using Ion.Delivery;
using Ion.Events;
using Ion.Log;
using Ion.Queues;
using Ion.Suppression;
using Microsoft.Extensions.Options;

namespace Ion.Stores.Sqlite;

public static class SqliteStore
{
    /// <summary>The embedded store: the queue, its dead letters, the delivery log, the suppression list and the event outbox in one SQLite file,
    /// <c>ion.db</c> in <c>Ion:DataDirectory</c>.</summary>
    public static IServiceCollection AddSqlite(this IServiceCollection services)
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
        services.AddSingleton<IDeliveryLog, SqliteDeliveryLog>();
        services.AddSingleton<ISuppressionList, SqliteSuppressionList>();
        services.AddSingleton<IEventOutbox, SqliteEventOutbox>();
        services.AddSingleton<IStoreCheck, SqliteStoreCheck>();
        // The file keeps what it is given, so ion removes finished messages past Ion:Delivery:LogRetention itself
        // (DynamoDB's TTL does this for the AWS store). Only a started host (ion serve) runs it.
        services.AddHostedService<LogPruner>();
        return services;
    }
}
