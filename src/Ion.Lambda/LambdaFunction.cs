using System.Text.Json;
using Amazon;
using Amazon.SimpleSystemsManagement;
using Amazon.SimpleSystemsManagement.Model;
using Ion.Delivery;
using Ion.Events;
using Ion.Queues;
using Ion.Stores.Aws;
using Ion.Suppression;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Ion.Lambda;

/// <summary>ion as a Lambda function: the same settings (<c>Ion__…</c> environment variables), store and delivery
/// core as <c>ion serve</c> with <c>Ion:Store=Aws</c>, fed by Lambda's SQS event source instead of receive loops.</summary>
public sealed class LambdaFunction(IHost host, SqsBatchHandler handler, ILogger<LambdaFunction> logger) : IAsyncDisposable
{
    /// <summary>The settings: the environment, the region Lambda runs in, and the SMTP password read from the SSM
    /// parameter <c>Ion:Smtp:PasswordParameter</c> names (a SecureString, decrypted), so it is never in the package or
    /// in the function's configuration; the fallback relay's likewise from <c>Ion:Smtp:Fallback:PasswordParameter</c>.</summary>
    public static async Task<IConfiguration> ConfigurationAsync(CancellationToken cancellationToken)
    {
        var configuration = new ConfigurationManager();
        // What appsettings.json gives ion serve and the Lambda needs: it has no data folder of its own to speak of.
        configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Ion:DataDirectory"] = "/tmp/ion",
            ["Ion:DefaultSender"] = "ion@localhost.localdomain",
        });
        configuration.AddEnvironmentVariables();
        configuration["Ion:Store"] = "Aws";
        if (string.IsNullOrWhiteSpace(configuration["Ion:Aws:Region"]))
            configuration["Ion:Aws:Region"] = Environment.GetEnvironmentVariable("AWS_REGION");
        foreach (var section in new[] { SmtpOptions.Section, FallbackRelayOptions.Section })
        {
            if (configuration[$"{section}:PasswordParameter"] is { Length: > 0 } parameter)
                configuration[$"{section}:{nameof(RelayOptions.Password)}"] = await ReadSecretAsync(configuration, section, parameter, cancellationToken);
        }
        return configuration;
    }

    private static async Task<string> ReadSecretAsync(ConfigurationManager configuration, string section, string name, CancellationToken cancellationToken)
    {
        var config = new AmazonSimpleSystemsManagementConfig();
        // An endpoint other than AWS's: the local harness.
        if (configuration["Ion:Lambda:SsmServiceUrl"] is { Length: > 0 } url)
        {
            config.ServiceURL = url;
            config.AuthenticationRegion = configuration["Ion:Aws:Region"];
        }
        else if (configuration["Ion:Aws:Region"] is { Length: > 0 } region)
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(region);
        }
        try
        {
            using var ssm = new AmazonSimpleSystemsManagementClient(config);
            var response = await ssm.GetParameterAsync(new GetParameterRequest { Name = name, WithDecryption = true }, cancellationToken);
            return response.Parameter.Value;
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            throw new InvalidOperationException($"{section}:PasswordParameter: could not read SSM parameter '{name}': {error.Message}", error);
        }
    }

    /// <summary>Builds ion's services and checks every setting now, naming a bad one.</summary>
    public static LambdaFunction Start(IConfiguration configuration)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddConfiguration(configuration);
        builder.Logging.AddConfiguration(builder.Configuration.GetSection("Logging"));
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Services.AddIon();
        builder.Services.AddAws();
        builder.Services.AddQueues();
        builder.Services.AddSuppression();
        builder.Services.AddEvents();
        builder.Services.AddDelivery();
        builder.Services.AddOptions<LambdaOptions>().BindConfiguration(LambdaOptions.Section);
        builder.Services.AddSingleton(sp => new InvocationQueue(
            sp.GetRequiredService<SqsQueue>(), sp.GetRequiredService<Relays>(), sp.GetRequiredService<IOptions<LambdaOptions>>().Value));
        builder.Services.Replace(ServiceDescriptor.Singleton<IMessageQueue>(sp => sp.GetRequiredService<InvocationQueue>()));
        builder.Services.AddSingleton<SqsBatchHandler>();
        builder.Services.AddSingleton<LambdaFunction>();
        var host = builder.Build();
        // A host checks its options when it starts; this one is never started (it would run ion serve's worker), so
        // they are checked here.
        _ = host.Services.GetRequiredService<IOptions<IonOptions>>().Value;
        _ = host.Services.GetRequiredService<IOptions<DeliveryOptions>>().Value;
        _ = host.Services.GetRequiredService<IOptions<SmtpOptions>>().Value;
        _ = host.Services.GetRequiredService<IOptions<AwsOptions>>().Value;
        return host.Services.GetRequiredService<LambdaFunction>();
    }

    /// <summary>Answers invocations, one at a time as Lambda gives them, until <paramref name="cancellationToken"/>.</summary>
    public async Task RunAsync(LambdaRuntime runtime, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        while (!cancellationToken.IsCancellationRequested)
        {
            var invocation = await runtime.NextAsync(cancellationToken);
            byte[] answer;
            try
            {
                var sqsEvent = JsonSerializer.Deserialize(invocation.Event, LambdaJson.Default.SqsEvent)
                    ?? throw new InvalidDataException("the event is empty");
                var response = await handler.HandleAsync(sqsEvent, invocation.Deadline, cancellationToken);
                Log.Invoked(logger, invocation.RequestId, sqsEvent.Records.Count, response.BatchItemFailures.Count);
                answer = JsonSerializer.SerializeToUtf8Bytes(response, LambdaJson.Default.BatchResponse);
            }
            catch (Exception error) when (!cancellationToken.IsCancellationRequested)
            {
                // Not a partial answer: every record comes back after its visibility timeout, and the log says which
                // were sent.
                Log.InvocationFailed(logger, invocation.RequestId, error);
                await runtime.FailAsync(invocation.RequestId, error, cancellationToken);
                continue;
            }
            await runtime.RespondAsync(invocation.RequestId, answer, cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await handler.DisposeAsync();
        host.Dispose();
    }
}
