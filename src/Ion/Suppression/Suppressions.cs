using Ion.Delivery;
using Ion.Messages;
using Microsoft.Extensions.Options;

namespace Ion.Suppression;

/// <summary>
/// What delivery and the API do with the suppression list: look recipients up before a send, add those the relay
/// refused for good. A store without a list (the AWS store without <c>Ion:Aws:SuppressionTable</c>) has none: nothing is
/// suppressed, and the API says so instead of pretending.
/// </summary>
public sealed class Suppressions(ISuppressionList? list, IOptions<SuppressionOptions> options, TimeProvider time)
{
    private static readonly IReadOnlyDictionary<string, SuppressedAddress> None = new Dictionary<string, SuppressedAddress>();
    private readonly SuppressionOptions _options = options.Value;

    /// <summary>The store's list, or null when the store has none.</summary>
    public ISuppressionList? List => list;

    /// <summary>Why a message that asks to ignore the list is refused, or null when it may.</summary>
    public string? RefusalOf(EmailMessage email) =>
        email.IgnoreSuppression && !_options.AllowIgnore
            ? $"a message may ignore the suppression list only where {SuppressionOptions.Section}:AllowIgnore is true"
            : null;

    /// <summary>Those of <paramref name="email"/>'s <paramref name="recipients"/> not to send to now: none when the
    /// message ignores the list and may.</summary>
    public Task<IReadOnlyDictionary<string, SuppressedAddress>> FindAsync(EmailMessage email, IReadOnlyCollection<string> recipients, CancellationToken cancellationToken) =>
        list is null || !_options.Enabled || recipients.Count == 0 || (email.IgnoreSuppression && _options.AllowIgnore)
            ? Task.FromResult(None)
            : list.FindAsync(recipients, time.GetUtcNow(), cancellationToken);

    /// <summary>Puts on the list the recipients of <paramref name="messageId"/> that the relay refused for good.</summary>
    public Task NoteRefusalsAsync(string messageId, IEnumerable<RecipientAnswer> answers, CancellationToken cancellationToken)
    {
        if (list is null || !_options.Enabled)
            return Task.CompletedTask;
        var now = time.GetUtcNow();
        List<SuppressedAddress> bounced = [.. answers.Where(a => SuppressionRules.Suppresses(a.Answer))
            .Select(a => New(a.Address, SuppressionReason.Bounce, a.Answer.Reply, now, messageId))];
        return bounced.Count == 0 ? Task.CompletedTask : list.AddAsync(bounced, cancellationToken);
    }

    /// <summary>Puts on the list what reports arriving after the send said (<see cref="Feedback"/>); false, adding
    /// nothing, when the list is switched off.</summary>
    public async Task<bool> NoteFeedbackAsync(IReadOnlyList<FeedbackItem> items, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (list is null)
            throw new InvalidOperationException("this store has no suppression list");
        if (!_options.Enabled)
            return false;
        if (items.Count > 0)
        {
            var now = time.GetUtcNow();
            await list.AddAsync([.. items.Select(i => New(i.Address, i.Reason, i.Detail, now, i.MessageId))], cancellationToken);
        }
        return true;
    }

    /// <summary>Undoes what the refusals of <paramref name="messageIds"/> added: they turned out to be the relay's
    /// (<see cref="Delivery.RefusalStreak"/>).</summary>
    public Task ForgetRefusalsAsync(IReadOnlyCollection<string> messageIds, CancellationToken cancellationToken) =>
        list is null || messageIds.Count == 0 ? Task.CompletedTask : list.RemoveAddedByAsync(messageIds, cancellationToken);

    /// <summary>An entry for <paramref name="address"/>, expiring after the reason's retention.</summary>
    public SuppressedAddress New(string address, SuppressionReason reason, string detail, DateTimeOffset at, string? messageId = null) =>
        new(address, reason, detail, at, _options.RetentionOf(reason) is { } keep ? at + keep : null, messageId);
}

public static class SuppressionServices
{
    /// <summary>The suppression list of the store, if it has one, and its settings.</summary>
    public static IServiceCollection AddSuppression(this IServiceCollection services)
    {
        services.AddOptions<SuppressionOptions>().BindConfiguration(SuppressionOptions.Section).Checked<SuppressionOptions, SuppressionOptionsValidator>();
        services.AddSingleton(sp => new Suppressions(sp.GetService<ISuppressionList>(), sp.GetRequiredService<IOptions<SuppressionOptions>>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<Feedback>();
        return services;
    }
}
