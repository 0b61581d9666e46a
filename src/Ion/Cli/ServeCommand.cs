using System.CommandLine;
using Microsoft.Extensions.Options;

namespace Ion.Cli;

internal static class ServeCommand
{
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
                await app.RunAsync(cancellationToken);
                return CliOutput.Ok;
            }
            catch (OptionsValidationException invalid)
            {
                return CliOutput.Fail(CliOutput.Invalid, $"configuration: {string.Join("; ", invalid.Failures)}");
            }
            catch (IOException io) when (io.InnerException is System.Net.Sockets.SocketException || io.Message.Contains("address", StringComparison.OrdinalIgnoreCase))
            {
                return CliOutput.Fail(CliOutput.Failed, $"cannot listen: {io.Message}");
            }
        });
        return command;
    }
}
