using Ion.Messages;
using Microsoft.Extensions.Options;

namespace Ion;

/// <summary>The <c>Ion</c> section: what is not specific to one part of ion.</summary>
public sealed class IonOptions
{
    public const string Section = "Ion";

    /// <summary>Where the SQLite file (queue, dead letters, delivery log) lives. Relative paths are taken from the
    /// working directory.</summary>
    public string DataDirectory { get; set; } = ".data";

    /// <summary>The From address of every message that names none.</summary>
    public string DefaultSender { get; set; } = "";

    /// <summary>Addresses or <c>@domain</c> entries a message may use as <c>from</c>.</summary>
    public List<string> AllowedSenders { get; set; } = [];

    /// <summary>The largest accepted message (raw JSON), attachments included.</summary>
    public long MaxMessageBytes { get; set; } = 10 * 1024 * 1024;

    public string DatabasePath => Path.GetFullPath(Path.Combine(DataDirectory, "ion.db"));

    public MessageRules ToMessageRules() =>
        new(DefaultSender, AllowedSenders, Math.Min(MessageRules.DefaultMaxAttachmentBytes, MaxMessageBytes));
}

internal sealed class IonOptionsValidator : IValidateOptions<IonOptions>
{
    public ValidateOptionsResult Validate(string? name, IonOptions options)
    {
        List<string> errors = [];
        if (string.IsNullOrWhiteSpace(options.DataDirectory))
            errors.Add("Ion:DataDirectory must name a folder");
        // The same rules the parser applies to a message's from, so the default sender is one a message could
        // name: an address (an IDN domain is fine) whose local part is ASCII, since it goes into every email.
        if (SenderProblem(options.DefaultSender) is { } defaultProblem)
            errors.Add($"Ion:DefaultSender must be an email address with an ASCII local part (is '{options.DefaultSender}': {defaultProblem})");
        foreach (var sender in options.AllowedSenders)
        {
            var problem = sender.StartsWith('@')
                ? Addresses.TryCanonicalizeDomain(sender[1..], out _, out var domainProblem) ? null : domainProblem
                : SenderProblem(sender);
            if (problem is not null)
                errors.Add($"Ion:AllowedSenders: '{sender}' is neither a sender address nor an @domain entry ({problem})");
        }
        if (options.MaxMessageBytes is < 1024 or > 64 * 1024 * 1024)
            errors.Add("Ion:MaxMessageBytes must be between 1024 and 67108864");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static string? SenderProblem(string address) =>
        Addresses.TryCanonicalize(address, out var canonical, out var problem) ? Addresses.SenderProblem(canonical) : problem;
}
