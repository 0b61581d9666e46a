using Microsoft.Extensions.Options;

namespace Ion.Log;

public static class LogServices
{
    public static IServiceCollection AddDeliveryLog(this IServiceCollection services)
    {
        services.AddSingleton(sp => new DeliveryLog(
            sp.GetRequiredService<IOptions<IonOptions>>().Value.DatabasePath,
            sp.GetRequiredService<TimeProvider>()));
        return services;
    }
}
