using System.CommandLine;
using Ion.Queues;
using Microsoft.Extensions.Options;

namespace Ion.Cli;

/// <summary>Exit codes and the one-line error every command ends with when it fails.</summary>
internal static class CliOutput
{
    public const int Ok = 0;
    /// <summary>The work failed (not found, queue unavailable).</summary>
    public const int Failed = 1;
    /// <summary>The input or the configuration is wrong.</summary>
    public const int Invalid = 2;

    public static int Fail(int code, string message)
    {
        Console.Error.WriteLine($"ion: {message}");
        return code;
    }

    /// <summary>The text of a command's input file, or of standard input for <c>-</c>; null when there is no such file.</summary>
    public static async Task<string?> ReadInputAsync(string path, CancellationToken cancellationToken) =>
        path == "-" ? await Console.In.ReadToEndAsync(cancellationToken)
        : File.Exists(path) ? await File.ReadAllTextAsync(path, cancellationToken)
        : null;

    /// <summary>Runs a command body, turning configuration and I/O failures into one line on stderr.</summary>
    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (OptionsValidationException error)
        {
            return Fail(Invalid, $"configuration: {string.Join("; ", error.Failures)}");
        }
        catch (OperationCanceledException)
        {
            return Fail(Failed, "cancelled");
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException or StoreUnavailableException or InvalidOperationException)
        {
            return Fail(Failed, error.Message);
        }
    }

    /// <summary>Runs a command that works on the queue file directly: settings from the command line, the
    /// services without the web host, and failures as one line on stderr.</summary>
    /// <param name="more">Settings the command's own options stand for (<c>--topic-arn</c>), after and over the others.</param>
    public static Task<int> RunWithServicesAsync(ParseResult parse, Func<IServiceProvider, Task<int>> body, IEnumerable<string>? more = null) =>
        RunAsync(async () =>
        {
            var settings = CommandLineSettings.Of(parse, out var error);
            if (settings is null)
                return Fail(Invalid, error!);
            using var host = IonApp.BuildTool([.. settings, .. more ?? []]);
            return await body(host.Services);
        });
}
