using System.CommandLine;
using System.Globalization;
using Ion.Log;
using Ion.Queues;

namespace Ion.Cli;

/// <summary><c>ion dead-letters list</c> and <c>ion dead-letters redrive [--id …]</c>.</summary>
internal static class DeadLettersCommand
{
    public static Command Create()
    {
        Command command = new("dead-letters", "List dead letters, or move them back to the queue.");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Redrive());
        return command;
    }

    private static Command List()
    {
        Option<int> limit = new("--limit") { Description = "At most this many, oldest first", DefaultValueFactory = _ => 100 };
        Command command = new("list", "List dead letters with their reasons.") { limit };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) => CliOutput.RunWithServicesAsync(parse, async services =>
        {
            var letters = await services.GetRequiredService<IDeliveryLog>().ListDeadLettersAsync(new DeadLetterQuery(Math.Max(1, parse.GetValue(limit))), cancellationToken);
            foreach (var letter in letters)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{letter.Id}\t{letter.DeadAt:u}\t{letter.Attempts} attempt(s)\t{letter.Reason}"));
            }
            Console.Error.WriteLine($"{letters.Count} dead letter(s)");
            return CliOutput.Ok;
        }));
        return command;
    }

    private static Command Redrive()
    {
        Option<string[]> ids = new("--id") { Description = "Only these ids (repeat for more); all when omitted" };
        Command command = new("redrive", "Move dead letters back to the queue with fresh attempts.") { ids };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) => CliOutput.RunWithServicesAsync(parse, async services =>
        {
            var chosen = parse.GetValue(ids) is { Length: > 0 } some ? some : null;
            var moved = await services.GetRequiredService<Redriver>().RedriveAsync(chosen, cancellationToken);
            Console.WriteLine($"redriven: {moved.Count}");
            if (chosen is not null && moved.Count < chosen.Distinct().Count())
                return CliOutput.Fail(CliOutput.Failed, $"{chosen.Distinct().Count() - moved.Count} of the given id(s) are not dead letters");
            return CliOutput.Ok;
        }));
        return command;
    }
}
