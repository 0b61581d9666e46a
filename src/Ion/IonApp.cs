using Ion.Api;
using Ion.Delivery;
using Ion.Log;
using Ion.Queues;

namespace Ion;

/// <summary>Builds ion: the web app for <c>ion serve</c> (and the tests), and the same services for the other commands.</summary>
public static class IonApp
{
    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.AddIonConfiguration(args);
        builder.Services.AddIon();
        builder.Services.AddQueues();
        builder.Services.AddDeliveryLog();
        builder.Services.AddDelivery();
        builder.AddApi();

        var app = builder.Build();
        app.UseApi();
        app.MapHealthApi();
        app.MapMessagesApi();
        app.MapDeadLettersApi();
        return app;
    }

    /// <summary>The services of the commands that work on the queue and the log without delivering.</summary>
    public static IHost BuildTool(string[] args)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.AddIonConfiguration(args);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddIon();
        builder.Services.AddQueues();
        builder.Services.AddDeliveryLog();
        return builder.Build();
    }

    /// <summary>appsettings.json (defaults, beside the binary), then an optional secrets file kept out of git
    /// (<c>ion.secrets.json</c> in the working directory, or the file <c>ION_SECRETS_FILE</c> names), then
    /// environment variables (<c>Ion__Smtp__Password</c>), then the command line.</summary>
    public static void AddIonConfiguration(this IHostApplicationBuilder builder, string[] args)
    {
        var secrets = Environment.GetEnvironmentVariable("ION_SECRETS_FILE")
            ?? Path.Combine(Directory.GetCurrentDirectory(), "ion.secrets.json");
        builder.Configuration.AddJsonFile(Path.GetFullPath(secrets), optional: true, reloadOnChange: false);
        // The host added these before; added again they win over the secrets file, as documented.
        builder.Configuration.AddEnvironmentVariables();
        builder.Configuration.AddCommandLine(args);
    }

    public static IServiceCollection AddIon(this IServiceCollection services)
    {
        services.AddSingleton(TimeProvider.System);
        services.AddSettings<IonOptions, IonOptionsValidator>(IonOptions.Section);
        services.AddSettings<DeliveryOptions, DeliveryOptionsValidator>(DeliveryOptions.Section);
        return services;
    }
}
