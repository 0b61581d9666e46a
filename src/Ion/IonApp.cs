using Ion.Api;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using Ion.Delivery;
using Ion.Events;
using Ion.Log;
using Ion.Queues;
using Ion.Stores.Aws;
using Ion.Stores.Sqlite;
using Ion.Suppression;

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
        // The slim builder fixes the console's formatter to "simple"; Logging:Console:FormatterName picks another, the
        // standard way (json: one JSON object per event, its fields included).
        if (builder.Configuration["Logging:Console:FormatterName"] is { Length: > 0 } formatter)
            builder.Services.Configure<ConsoleLoggerOptions>(console => console.FormatterName = formatter);
        builder.Services.AddIon();
        builder.AddStore();
        builder.Services.AddQueues();
        builder.Services.AddSuppression();
        builder.Services.AddEvents();
        builder.Services.AddDelivery();
        builder.Services.AddWebhooks();
        builder.AddApi();
        builder.Services.AddHealth();
        builder.AddMetricsApi();

        var app = builder.Build();
        app.UseApi();
        app.MapHealthApi();
        app.MapMessagesApi();
        app.MapDeadLettersApi();
        app.MapSuppressionsApi();
        app.MapWebhooksApi();
        app.MapFeedbackApi();
        app.MapMetricsApi();
        app.MapDashboard();
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
        builder.AddStore();
        builder.Services.AddQueues();
        builder.Services.AddSuppression();
        builder.Services.AddEvents();
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

    /// <summary>The store <c>Ion:Store</c> names: its queue, dead letters and delivery log. The core only sees
    /// <see cref="IMessageQueue"/> and <see cref="Log.IDeliveryLog"/>.</summary>
    public static void AddStore(this IHostApplicationBuilder builder)
    {
        var store = builder.Configuration["Ion:Store"];
        switch (string.IsNullOrWhiteSpace(store) ? "Sqlite" : store.Trim())
        {
            case var name when name.Equals("Sqlite", StringComparison.OrdinalIgnoreCase):
                builder.Services.AddSqlite();
                break;
            case var name when name.Equals("Aws", StringComparison.OrdinalIgnoreCase):
                builder.Services.AddAws();
                break;
            default:
                throw new OptionsValidationException("Ion:Store", typeof(IonOptions), [$"Ion:Store must be Sqlite or Aws (is '{store}')"]);
        }
    }

    public static IServiceCollection AddIon(this IServiceCollection services)
    {
        services.AddSingleton(TimeProvider.System);
        services.AddOptions<IonOptions>().BindConfiguration(IonOptions.Section).Checked<IonOptions, IonOptionsValidator>();
        services.AddOptions<DeliveryOptions>().BindConfiguration(DeliveryOptions.Section).Checked<DeliveryOptions, DeliveryOptionsValidator>();
        return services;
    }
}
