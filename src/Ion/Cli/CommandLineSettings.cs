using System.CommandLine;

namespace Ion.Cli;

/// <summary>Settings given on the command line, in the .NET configuration convention: <c>--Key value</c> or
/// <c>--Key=value</c> (<c>--Ion:Smtp:Host relay</c>, <c>--urls http://…</c>), anywhere after the command.</summary>
/// <remarks>System.CommandLine knows nothing of settings: it binds an unknown <c>--Key</c>, or its value, to a
/// positional argument (<c>ion publish FILE</c>, <c>ion status ID</c>) or to a preceding <c>--to a b</c>. So
/// <see cref="Carry"/> takes each setting out of the arguments before they are parsed and hands it back as the value
/// of <see cref="Option"/>, a hidden option no command binds anything else to.</remarks>
internal static class CommandLineSettings
{
    /// <summary>Every setting, as <c>Key=value</c>; the root command must have it.</summary>
    public static readonly Option<string[]> Option = new("--setting")
    {
        Hidden = true,
        Recursive = true,
        Description = "A setting, as Key=value (what --Key value on the command line becomes)",
    };

    /// <summary>The arguments System.CommandLine should parse: each setting (a <c>--Key</c> that is not an option of
    /// the command, with its value) replaced by <c>--setting Key=value</c>; everything else as given.</summary>
    public static string[] Carry(RootCommand root, IReadOnlyList<string> args)
    {
        List<string> parsed = [];
        List<Command> commands = [root];
        for (var i = 0; i < args.Count; i++)
        {
            var token = args[i];
            if (token == "--")
            {
                // After "--" everything is an argument, for System.CommandLine as for configuration.
                parsed.AddRange(args.Skip(i));
                break;
            }
            if (commands[^1].Subcommands.FirstOrDefault(c => c.Name == token || c.Aliases.Contains(token)) is { } subcommand)
            {
                commands.Add(subcommand);
                parsed.Add(token);
            }
            else if (FindOption(commands, token) is { } option)
            {
                parsed.Add(token);
                // The option's value stays with it even when it looks like a setting (--subject --Ion:X).
                // Option names hold no '=' or ':', so one in the token is an inline value (--limit=5).
                var inline = token.IndexOfAny(['=', ':']) > 0;
                // A flag (--force) may take a value, but the next option or setting is not one.
                var optional = option.Arity.MinimumNumberOfValues == 0 && i + 1 < args.Count && args[i + 1].StartsWith("--", StringComparison.Ordinal);
                if (!inline && !optional && option.Arity.MaximumNumberOfValues > 0 && i + 1 < args.Count)
                    parsed.Add(args[++i]);
            }
            else if (IsSettingKey(token))
            {
                // As Microsoft.Extensions.Configuration.CommandLine reads it: --Key=value, or --Key and the next token
                // whatever it looks like. A key with nothing after it is kept without '=' and refused by Of.
                var setting = token[2..];
                if (!setting.Contains('=', StringComparison.Ordinal) && i + 1 < args.Count)
                    setting += "=" + args[++i];
                parsed.Add(Option.Name);
                parsed.Add(setting);
            }
            else
            {
                parsed.Add(token);
            }
        }
        return [.. parsed];
    }

    /// <summary>The settings, as <c>--Key=value</c> arguments for the host's configuration; null, with the one-line
    /// error, when something left over is not a setting or a setting has no value.</summary>
    public static string[]? Of(ParseResult parse, out string? error)
    {
        if (parse.UnmatchedTokens is [var stray, ..])
        {
            error = $"unexpected argument '{stray}' (settings are given as --Ion:Section:Key value or --Ion:Section:Key=value)";
            return null;
        }
        var settings = parse.GetValue(Option) ?? [];
        if (settings.FirstOrDefault(s => !s.Contains('=', StringComparison.Ordinal)) is { } bare)
        {
            error = $"no value for the setting '--{bare}'";
            return null;
        }
        error = null;
        return [.. settings.Select(s => "--" + s)];
    }

    /// <summary>A long option name, not "--" alone or "---…": configuration keys start with a letter or digit.</summary>
    private static bool IsSettingKey(string token) =>
        token.Length > 2 && token.StartsWith("--", StringComparison.Ordinal) && char.IsLetterOrDigit(token[2]);

    /// <summary>The option <paramref name="token"/> names, by name or alias, alone or with an inline value
    /// (<c>--limit=5</c>, <c>--limit:5</c>, as System.CommandLine accepts): the command's own options and those
    /// its parents share with it (<c>--help</c>).</summary>
    private static Option? FindOption(List<Command> commands, string token)
    {
        var separator = token.IndexOfAny(['=', ':']);
        var name = separator > 0 ? token[..separator] : token;
        for (var level = commands.Count - 1; level >= 0; level--)
        {
            foreach (var option in commands[level].Options)
            {
                if ((level == commands.Count - 1 || option.Recursive) && (option.Name == name || option.Aliases.Contains(name)))
                    return option;
            }
        }
        return null;
    }
}
