using Microsoft.Extensions.Options;

namespace Ion.Suppression;

/// <summary>The <c>Ion:Suppression</c> section.</summary>
public sealed class SuppressionOptions
{
    public const string Section = "Ion:Suppression";

    /// <summary>Look recipients up before sending and add those the relay refuses for good. Off: the list is kept
    /// and managed, but not applied.</summary>
    public bool Enabled { get; set; } = true;
    /// <summary>Let a message say <c>"ignore_suppression": true</c> and be sent to suppressed recipients too (password
    /// resets and other mail its owner asked for just now). Off: such a message is refused at publish, and one that
    /// reaches the queue another way is sent as if it did not say so.</summary>
    public bool AllowIgnore { get; set; }
    /// <summary>How long a bounce keeps an address suppressed (mailboxes are sometimes created again).</summary>
    public TimeSpan BounceRetention { get; set; } = TimeSpan.FromDays(90);
    /// <summary>How long a complaint does; none (the default) is for ever.</summary>
    public TimeSpan? ComplaintRetention { get; set; }

    public TimeSpan? RetentionOf(SuppressionReason reason) => reason switch
    {
        SuppressionReason.Bounce => BounceRetention,
        SuppressionReason.Complaint => ComplaintRetention,
        _ => null,
    };
}

internal sealed class SuppressionOptionsValidator : IValidateOptions<SuppressionOptions>
{
    public ValidateOptionsResult Validate(string? name, SuppressionOptions options)
    {
        List<string> errors = [];
        if (options.BounceRetention <= TimeSpan.Zero)
            errors.Add($"{SuppressionOptions.Section}:BounceRetention must be positive (is {options.BounceRetention})");
        if (options.ComplaintRetention is { } complaint && complaint <= TimeSpan.Zero)
            errors.Add($"{SuppressionOptions.Section}:ComplaintRetention must be positive or left out for ever (is {complaint})");
        return errors.Count > 0 ? ValidateOptionsResult.Fail(errors) : ValidateOptionsResult.Success;
    }
}
