using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Ion.Messages;
using Ion.Suppression;

namespace Ion.Cli;

/// <summary><c>ion suppressions list|add|remove|import|export</c>: the suppression list of the configured store, as the
/// API manages it. <c>export</c> writes JSON lines in the API's shape; <c>import</c> reads them back (or one bare
/// address per line), all or nothing.</summary>
internal static class SuppressionsCommand
{
    private const int PageSize = 1000;

    public static Command Create()
    {
        Command command = new("suppressions", "List, add, remove, import or export the addresses ion does not send to.");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Add());
        command.Subcommands.Add(Remove());
        command.Subcommands.Add(Import());
        command.Subcommands.Add(Export());
        return command;
    }

    private sealed record Filters(Option<string?> Domain, Option<string?> Reason)
    {
        public static Filters Add(Command command)
        {
            Filters filters = new(
                new Option<string?>("--domain") { Description = "Only addresses in this domain" },
                new Option<string?>("--reason") { Description = "Only this reason: bounce, complaint, manual" });
            command.Options.Add(filters.Domain);
            command.Options.Add(filters.Reason);
            return filters;
        }

        /// <summary>The query, or null with <paramref name="error"/> when the reason is not one.</summary>
        public SuppressionQuery? Query(ParseResult parse, out string? error)
        {
            error = null;
            SuppressionReason? reason = null;
            if (parse.GetValue(Reason) is { } name)
            {
                if (!SuppressionReasons.TryParse(name, out var parsed))
                {
                    error = $"--reason must be one of {SuppressionReasons.Names} (is '{name}')";
                    return null;
                }
                reason = parsed;
            }
            var domain = parse.GetValue(Domain);
            return new SuppressionQuery(domain is null ? null : SuppressionQuery.CanonicalDomain(domain), reason, Limit: PageSize);
        }
    }

    private static Command List() => Listing("list", "List the addresses in force, by address: address, reason, since, until, detail.",
        entry => string.Create(CultureInfo.InvariantCulture,
            $"{entry.Address}\t{entry.Reason.Name()}\t{entry.At:u}\t{(entry.ExpiresAt is { } until ? until.ToString("u", CultureInfo.InvariantCulture) : "never")}\t{entry.Detail}"),
        count => $"{count} suppressed address(es)");

    private static Command Export() => Listing("export", "Write the addresses in force as JSON lines (the API's shape), for import elsewhere.",
        entry => JsonSerializer.Serialize(entry, SuppressionsJson.Default.SuppressedAddress),
        count => $"exported {count} address(es)");

    /// <summary>A command that writes every entry in force the filters find, a line each, and the count on stderr.</summary>
    private static Command Listing(string name, string description, Func<SuppressedAddress, string> line, Func<int, string> summary)
    {
        Command command = new(name, description);
        var filters = Filters.Add(command);
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) => WithList(parse, async (list, _, time) =>
        {
            if (filters.Query(parse, out var error) is not { } query)
                return CliOutput.Fail(CliOutput.Invalid, error!);
            var count = 0;
            await foreach (var entry in All(list, query, time.GetUtcNow(), cancellationToken))
            {
                Console.WriteLine(line(entry));
                count++;
            }
            Console.Error.WriteLine(summary(count));
            return CliOutput.Ok;
        }));
        return command;
    }

    private static Command Add()
    {
        Argument<string[]> addresses = new("address") { Description = "One or more addresses", Arity = ArgumentArity.OneOrMore };
        Option<string> reason = new("--reason") { Description = "bounce, complaint or manual", DefaultValueFactory = _ => "manual" };
        Option<string> detail = new("--detail") { Description = "Why, in words", DefaultValueFactory = _ => "added with ion suppressions add" };
        Command command = new("add", "Suppress addresses (a bounce expires after Ion:Suppression:BounceRetention).") { addresses, reason, detail };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) => WithList(parse, async (list, suppressions, time) =>
        {
            if (!SuppressionReasons.TryParse(parse.GetValue(reason)!, out var why))
                return CliOutput.Fail(CliOutput.Invalid, $"--reason must be one of {SuppressionReasons.Names} (is '{parse.GetValue(reason)}')");
            List<SuppressedAddress> entries = [];
            foreach (var address in parse.GetValue(addresses)!)
            {
                if (!Addresses.TryCanonicalize(address, out var canonical, out var problem))
                    return CliOutput.Fail(CliOutput.Invalid, $"'{address}' is not an address: {problem}; nothing was added");
                entries.Add(suppressions.New(canonical, why, parse.GetValue(detail)!, time.GetUtcNow()));
            }
            await list.AddAsync(entries, cancellationToken);
            foreach (var entry in entries)
                Console.WriteLine(entry.Address);
            return CliOutput.Ok;
        }));
        return command;
    }

    private static Command Remove()
    {
        Argument<string[]> addresses = new("address") { Description = "One or more addresses", Arity = ArgumentArity.OneOrMore };
        Command command = new("remove", "Take addresses off the list: ion sends to them again.") { addresses };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) => WithList(parse, async (list, _, _) =>
        {
            List<string> missing = [];
            foreach (var address in parse.GetValue(addresses)!)
            {
                if (!Addresses.TryCanonicalize(address, out var canonical, out var problem))
                    return CliOutput.Fail(CliOutput.Invalid, $"'{address}' is not an address: {problem}");
                if (await list.RemoveAsync(canonical, cancellationToken))
                    Console.WriteLine(canonical);
                else
                    missing.Add(canonical);
            }
            return missing.Count == 0 ? CliOutput.Ok : CliOutput.Fail(CliOutput.Failed, $"not on the list: {string.Join(", ", missing)}");
        }));
        return command;
    }

    private static Command Import()
    {
        Argument<string> file = new("file") { Description = "JSON lines as export writes them, or one address per line; '-' reads standard input" };
        Command command = new("import", "Add every address of a file: all of them, or none when a line is wrong.") { file };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) => WithList(parse, async (list, suppressions, time) =>
        {
            var path = parse.GetValue(file)!;
            if (await CliOutput.ReadInputAsync(path, cancellationToken) is not { } content)
                return CliOutput.Fail(CliOutput.Invalid, $"no such file: {path}");

            var now = time.GetUtcNow();
            List<SuppressedAddress> entries = [];
            List<string> errors = [];
            var number = 0;
            foreach (var raw in content.Split('\n'))
            {
                number++;
                var line = raw.Trim();
                if (line.Length == 0 || line.StartsWith('#'))
                    continue;
                if (ReadLine(line, suppressions, now, out var problem) is { } entry)
                    entries.Add(entry);
                else
                    errors.Add($"line {number}: {problem}");
            }
            if (errors.Count > 0)
            {
                foreach (var error in errors.Take(20))
                    Console.Error.WriteLine(error);
                return CliOutput.Fail(CliOutput.Invalid, $"{errors.Count} line(s) invalid; nothing was imported");
            }
            var expired = entries.RemoveAll(e => !e.IsActiveAt(now));
            for (var start = 0; start < entries.Count; start += PageSize)
                await list.AddAsync(entries.GetRange(start, Math.Min(PageSize, entries.Count - start)), cancellationToken);
            Console.WriteLine($"imported: {entries.Count}" + (expired > 0 ? $", skipped as expired: {expired}" : ""));
            return CliOutput.Ok;
        }));
        return command;
    }

    /// <summary>One import line: a JSON object (address required; reason, detail, at, expires_at, message_id optional) or
    /// a bare address (manual). An entry without <c>expires_at</c> gets its reason's retention from <c>at</c>.</summary>
    private static SuppressedAddress? ReadLine(string line, Suppressions suppressions, DateTimeOffset now, out string? problem)
    {
        problem = null;
        ImportedLine given;
        if (line.StartsWith('{'))
        {
            try
            {
                given = JsonSerializer.Deserialize(line, SuppressionsJson.Default.ImportedLine)!;
            }
            catch (JsonException error)
            {
                problem = $"not a JSON object of an address ({error.Message})";
                return null;
            }
        }
        else
        {
            given = new ImportedLine(line, null, null, null, null, null);
        }
        if (string.IsNullOrWhiteSpace(given.Address))
        {
            problem = "no address";
            return null;
        }
        if (!Addresses.TryCanonicalize(given.Address, out var canonical, out var bad))
        {
            problem = $"'{given.Address}' is not an address: {bad}";
            return null;
        }
        var reason = SuppressionReason.Manual;
        if (given.Reason is { } name && !SuppressionReasons.TryParse(name, out reason))
        {
            problem = $"reason must be one of {SuppressionReasons.Names} (is '{name}')";
            return null;
        }
        var entry = suppressions.New(canonical, reason, given.Detail ?? "imported with ion suppressions import", given.At ?? now, given.MessageId);
        return given.ExpiresAt is { } expires ? entry with { ExpiresAt = expires } : entry;
    }

    private static async IAsyncEnumerable<SuppressedAddress> All(ISuppressionList list, SuppressionQuery query, DateTimeOffset now,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        while (true)
        {
            var page = await list.ListAsync(query, now, cancellationToken);
            foreach (var entry in page)
                yield return entry;
            if (page.Count < query.Limit)
                yield break;
            query = query with { After = page[^1].Address };
        }
    }

    private static Task<int> WithList(ParseResult parse, Func<ISuppressionList, Suppressions, TimeProvider, Task<int>> body) =>
        CliOutput.RunWithServicesAsync(parse, services =>
        {
            var suppressions = services.GetRequiredService<Suppressions>();
            return suppressions.List is { } list
                ? body(list, suppressions, services.GetRequiredService<TimeProvider>())
                : Task.FromResult(CliOutput.Fail(CliOutput.Failed, "this store has no suppression list"));
        });

}

/// <summary>An import line as given: every field but the address may be left out.</summary>
internal sealed record ImportedLine(string? Address, string? Reason, string? Detail, DateTimeOffset? At, DateTimeOffset? ExpiresAt, string? MessageId);

/// <summary>The API's JSON shape (snake_case) for the CLI, generated: no reflection.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(SuppressedAddress))]
[JsonSerializable(typeof(ImportedLine))]
internal sealed partial class SuppressionsJson : JsonSerializerContext;
