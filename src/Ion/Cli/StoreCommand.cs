using System.CommandLine;
using Ion.Stores.Sqlite;

namespace Ion.Cli;

/// <summary><c>ion store check</c> and <c>ion store recover</c>: the one-machine store's file, checked, and saved from
/// damage (README, "A damaged database file").</summary>
internal static class StoreCommand
{
    public static Command Create()
    {
        Command command = new("store", "Check the SQLite file (Ion:DataDirectory/ion.db), or save what can be saved from a damaged one.");
        command.Subcommands.Add(Check());
        command.Subcommands.Add(Recover());
        return command;
    }

    private static Command Check()
    {
        Command command = new("check", "Check the file with SQLite's integrity_check; exit 1 when it is damaged.") { TreatUnmatchedTokensAsErrors = false };
        command.SetAction(parse => WithPath(parse, path =>
        {
            var problems = SqliteRepair.Problems(path, thorough: true);
            if (problems.Count > 0)
            {
                foreach (var problem in problems.Take(10))
                    Console.WriteLine($"  {problem}");
                return CliOutput.Fail(CliOutput.Failed, $"{path} is damaged ({problems.Count} problem(s) found): stop every ion process that uses it and run `ion store recover`");
            }
            Console.WriteLine($"{path}: ok; {SqliteRepair.Count(path)}");
            return CliOutput.Ok;
        }));
        return command;
    }

    private static Command Recover()
    {
        Option<bool> force = new("--force") { Description = "Rebuild the file even when the check finds nothing wrong" };
        Command command = new("recover", "Save what can be read of a damaged file into a new one that takes its place (the damaged file is kept beside it). Stop ion first.")
        {
            force,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(parse => WithPath(parse, path =>
        {
            if (SqliteRepair.IsHeld(path))
                return CliOutput.Fail(CliOutput.Failed, $"an ion process is delivering from {path}: stop it first (every ion serve on this data directory)");
            var problems = SqliteRepair.Problems(path, thorough: true);
            if (problems.Count == 0 && !parse.GetValue(force))
            {
                Console.WriteLine($"{path}: ok, nothing to recover ({SqliteRepair.Count(path)}); --force rebuilds it anyway");
                return CliOutput.Ok;
            }
            Console.Error.WriteLine($"ion: recovering {path} ({problems.Count} problem(s) found)…");
            var recovery = SqliteRepair.Recover(path, TimeProvider.System);
            Console.WriteLine($"before: {recovery.Before}");
            Console.WriteLine($"after:  {recovery.After}");
            Console.WriteLine($"the damaged file is kept as {recovery.DamagedCopy}");
            if (recovery.ProblemsAfter.Count > 0)
                return CliOutput.Fail(CliOutput.Failed, $"the recovered file still has {recovery.ProblemsAfter.Count} problem(s): {recovery.ProblemsAfter[0]}");
            Console.WriteLine($"{path}: recovered; start ion again");
            return CliOutput.Ok;
        }));
        return command;
    }

    private static int WithPath(ParseResult parse, Func<string, int> body)
    {
        var settings = CommandLineSettings.Of(parse, out var error);
        if (settings is null)
            return CliOutput.Fail(CliOutput.Invalid, error!);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = settings, ContentRootPath = AppContext.BaseDirectory });
        builder.AddIonConfiguration(settings);
        var path = (builder.Configuration.GetSection(IonOptions.Section).Get<IonOptions>() ?? new IonOptions()).DatabasePath;
        if (!File.Exists(path))
            return CliOutput.Fail(CliOutput.Failed, $"{path} does not exist (Ion:DataDirectory)");
        try
        {
            return body(path);
        }
        catch (Exception failure) when (failure is InvalidOperationException or IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException)
        {
            return CliOutput.Fail(CliOutput.Failed, failure.Message);
        }
    }
}
