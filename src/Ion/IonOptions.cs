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
        // The same rule the parser applies to a message's addresses, so the default sender is one a message could name.
        if (string.IsNullOrEmpty(options.DefaultSender) || !MessageParser.IsMailbox(options.DefaultSender))
            errors.Add($"Ion:DefaultSender must be an email address (is '{options.DefaultSender}')");
        foreach (var sender in options.AllowedSenders)
        {
            var ok = sender.StartsWith('@') ? sender.Length > 1 && !sender[1..].Contains('@', StringComparison.Ordinal) : MessageParser.IsMailbox(sender);
            if (!ok)
                errors.Add($"Ion:AllowedSenders: '{sender}' is neither an address nor an @domain entry");
        }
        if (options.MaxMessageBytes is < 1024 or > 64 * 1024 * 1024)
            errors.Add("Ion:MaxMessageBytes must be between 1024 and 67108864");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
