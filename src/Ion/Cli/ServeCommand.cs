using System.CommandLine;
using Ion.Queues;
using Microsoft.Extensions.Options;

namespace Ion.Cli;

internal static class ServeCommand
{
    /// <summary>How the command line runs <paramref name="parse"/>. <c>ion serve</c> stops as a .NET host does: on
    /// SIGTERM or Ctrl+C the host stops its services within <see cref="HostOptions.ShutdownTimeout"/> (the delivery
    /// slots finish a send or a long poll under way and give back what they hold). System.CommandLine's own handling
    /// of those signals would end the process 2 s after the signal, whatever was still under way; the other commands
    /// keep it (a cancelled command ends at once).</summary>
    public static InvocationConfiguration Invocation(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        return parse.CommandResult.Command.Name == "serve" ? new InvocationConfiguration { ProcessTerminationTimeout = null } : new InvocationConfiguration();
    }

    public static Command Create()
    {
        Command command = new("serve", "Run ion: the HTTP API and the delivery worker. Settings may follow as --Ion:Smtp:Host relay (see README).")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var settings = CommandLineSettings.Of(parse, out var error);
            if (settings is null)
                return CliOutput.Fail(CliOutput.Invalid, error!);
            try
            {
                await using var app = IonApp.Build(settings);
                // The host checks the settings itself in StartAsync, but logs a failure there with its stack trace
                // before rethrowing it; checked first, a bad setting is ion's one line and nothing else.
                app.Services.GetService<IStartupValidator>()?.Validate();
                if (app.Services.GetService<IStoreCheck>() is { } store)
                    await store.CheckAsync(cancellationToken);
                await app.RunAsync(cancellationToken);
                return CliOutput.Ok;
            }
            catch (Exception invalid) when (SettingErrors(invalid) is { } errors)
            {
                return CliOutput.Fail(CliOutput.Invalid, $"configuration: {string.Join("; ", errors)}");
            }
            catch (StoreUnavailableException unavailable)
            {
                return CliOutput.Fail(CliOutput.Failed, unavailable.Message);
            }
            catch (IOException io) when (io.InnerException is System.Net.Sockets.SocketException || io.Message.Contains("address", StringComparison.OrdinalIgnoreCase))
            {
                return CliOutput.Fail(CliOutput.Failed, $"cannot listen: {io.Message}");
            }
        });
        return command;
    }

    /// <summary>What is wrong with the settings, when that is what <paramref name="error"/> is: a validator's
    /// failures, a value the binder cannot convert ("abc" for a port), or several of these from the start-up
    /// validation, which checks every options class before it throws.</summary>
    private static List<string>? SettingErrors(Exception error) => error switch
    {
        OptionsValidationException invalid => [.. invalid.Failures],
        InvalidOperationException { InnerException: ArgumentException or FormatException } unconvertible => [unconvertible.Message],
        AggregateException all when all.InnerExceptions.Select(SettingErrors).ToList() is var each && each.TrueForAll(e => e is not null) =>
            [.. each.SelectMany(e => e!)],
        _ => null,
    };
}
