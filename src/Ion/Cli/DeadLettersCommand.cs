using System.CommandLine;
using System.Globalization;
using Ion.Log;
using Ion.Queues;

namespace Ion.Cli;

/// <summary><c>ion dead-letters list</c> and <c>ion dead-letters redrive</c>, each with the same filters: ids, failure
/// class, recipient domain, time.</summary>
internal static class DeadLettersCommand
{
    public static Command Create()
    {
        Command command = new("dead-letters", "List dead letters, or move them back to the queue.");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Redrive());
        return command;
    }

    private sealed record Filters(Option<string?> Class, Option<string?> Domain, Option<DateTimeOffset?> Since, Option<DateTimeOffset?> Before)
    {
        public static Filters Add(Command command)
        {
            Filters filters = new(
                new Option<string?>("--class") { Description = "Only this failure class: invalid, permanent, transient, relay, throttled, abandoned" },
                new Option<string?>("--domain") { Description = "Only those with a recipient in this domain" },
                new Option<DateTimeOffset?>("--since") { Description = "Only those dead at or after this time (ISO 8601)" },
                new Option<DateTimeOffset?>("--before") { Description = "Only those dead before this time (ISO 8601)" });
            command.Options.Add(filters.Class);
            command.Options.Add(filters.Domain);
            command.Options.Add(filters.Since);
            command.Options.Add(filters.Before);
            return filters;
        }

        public bool Given(ParseResult parse) =>
            parse.GetValue(Class) is not null || parse.GetValue(Domain) is not null || parse.GetValue(Since) is not null || parse.GetValue(Before) is not null;

        /// <summary>The query, or null with <paramref name="error"/> when the class is not one.</summary>
        public DeadLetterQuery? Query(ParseResult parse, int limit, out string? error)
        {
            error = null;
            FailureClass? failureClass = null;
            if (parse.GetValue(Class) is { } name)
            {
                if (!Enum.TryParse<FailureClass>(name, ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed))
                {
                    error = $"--class must be one of {string.Join(", ", Enum.GetValues<FailureClass>().Select(StoredNames.Of))} (is '{name}')";
                    return null;
                }
                failureClass = parsed;
            }
            return new DeadLetterQuery(limit, failureClass, parse.GetValue(Domain), parse.GetValue(Since), parse.GetValue(Before));
        }
    }

    private static Command List()
    {
        Option<int> limit = new("--limit") { Description = "At most this many, oldest first", DefaultValueFactory = _ => 100 };
        Command command = new("list", "List dead letters with their reasons.") { limit };
        var filters = Filters.Add(command);
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) => CliOutput.RunWithServicesAsync(parse, async services =>
        {
            if (filters.Query(parse, Math.Max(1, parse.GetValue(limit)), out var error) is not { } query)
                return CliOutput.Fail(CliOutput.Invalid, error!);
            var letters = await services.GetRequiredService<IDeliveryLog>().ListDeadLettersAsync(query, cancellationToken);
            foreach (var letter in letters)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{letter.Id}\t{letter.DeadAt:u}\t{StoredNames.Of(letter.FailureClass)}\t{letter.Attempts} attempt(s)\t{letter.Reason}"));
            }
            Console.Error.WriteLine($"{letters.Count} dead letter(s)");
            return CliOutput.Ok;
        }));
        return command;
    }

    private static Command Redrive()
    {
        Option<string[]> ids = new("--id") { Description = "Only these ids (repeat for more)" };
        Command command = new("redrive", "Move dead letters back to the queue with fresh attempts: all of them, the given ids, or those the filters find.") { ids };
        var filters = Filters.Add(command);
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) => CliOutput.RunWithServicesAsync(parse, async services =>
        {
            var chosen = parse.GetValue(ids) is { Length: > 0 } some ? some : null;
            if (chosen is not null && filters.Given(parse))
                return CliOutput.Fail(CliOutput.Invalid, "give either --id or the filters (--class, --domain, --since, --before), not both");
            if (filters.Query(parse, int.MaxValue, out var error) is not { } query)
                return CliOutput.Fail(CliOutput.Invalid, error!);

            var redriver = services.GetRequiredService<Redriver>();
            // Progress on stderr, on one line rewritten as it grows: a large redrive takes a while at its bounded rate.
            var progress = new ConsoleProgress();
            var moved = chosen is not null ? await redriver.RedriveAsync(chosen, cancellationToken, progress)
                : filters.Given(parse) ? await redriver.RedriveMatchingAsync(query, cancellationToken, progress)
                : await redriver.RedriveAsync(null, cancellationToken, progress);
            Console.Error.WriteLine();
            Console.WriteLine($"redriven: {moved.Count}");
            if (chosen is not null && moved.Count < chosen.Distinct().Count())
                return CliOutput.Fail(CliOutput.Failed, $"{chosen.Distinct().Count() - moved.Count} of the given id(s) are not dead letters");
            return CliOutput.Ok;
        }));
        return command;
    }

    /// <summary>Writes at once, on the caller's thread (<see cref="Progress{T}"/> would post to the thread pool and could
    /// write after the final line).</summary>
    private sealed class ConsoleProgress : IProgress<int>
    {
        public void Report(int value) => Console.Error.Write($"\rredriving: {value} moved");
    }
}
