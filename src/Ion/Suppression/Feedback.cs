using Ion.Messages;

namespace Ion.Suppression;

/// <summary>A recipient that a report arriving after the send (an SES notification, a DSN) says to stop mailing.
/// <see cref="Address"/> is canonical; <see cref="MessageId"/> is the Message-ID of the email the report is about, when
/// it is one of ion's (<see cref="MessageIds.IsIons"/>).</summary>
public sealed record FeedbackItem(string Address, SuppressionReason Reason, string Detail, string? MessageId = null);

/// <summary>What one report says: the recipients to suppress, how many it names that stay (a transient bounce, a
/// delivery), and how many it names with an address ion cannot read (skipped). <see cref="Source"/> is <c>ses</c> or
/// <c>dsn</c>.</summary>
public sealed record FeedbackReport(string Source, IReadOnlyList<FeedbackItem> Suppress, int Ignored, int Rejected);

/// <summary>What became of a report's recipients.</summary>
public sealed record FeedbackCounts(int Suppressed, int Ignored, int Rejected);

/// <summary>
/// Where every report arriving after the send comes in, whatever brought it (the HTTP endpoints, the AWS feedback
/// queue): its recipients go on the suppression list, are counted (<c>ion.feedback.recipients</c>) and logged. The one
/// place later work (events, webhooks) hooks into.
/// </summary>
public sealed partial class Feedback(Suppressions suppressions, Events.DeliveryEvents events, IonMetrics metrics, ILogger<Feedback> logger)
{
    /// <summary>Whether the store has a list to put anything on.</summary>
    public bool HasList => suppressions.List is not null;

    /// <summary>Puts the report's recipients on the list. Throws what the list throws: the report was not taken, and
    /// whoever brought it should bring it again.</summary>
    public async Task<FeedbackCounts> TakeAsync(FeedbackReport report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        var added = await suppressions.NoteFeedbackAsync(report.Suppress, cancellationToken);
        // Then their events: a report whose events could not be kept is not taken, and comes again (the list takes it twice).
        if (added)
            await events.FeedbackAsync(report.Source, report.Suppress, cancellationToken);
        // Switched off (Ion:Suppression:Enabled=false), the list takes nothing: the recipients are ignored.
        var counts = added
            ? new FeedbackCounts(report.Suppress.Count, report.Ignored, report.Rejected)
            : new FeedbackCounts(0, report.Ignored + report.Suppress.Count, report.Rejected);
        metrics.FeedbackRecipients(report.Source, counts);
        if (added)
        {
            foreach (var item in report.Suppress)
                Log.Suppressed(logger, item.Address, item.Reason.ToString().ToLowerInvariant(), report.Source, item.Detail);
        }
        if (report.Rejected > 0)
            Log.RejectedRecipients(logger, report.Source, report.Rejected);
        return counts;
    }

    /// <summary>Notes a report that could not be read at all.</summary>
    public void Unreadable(string source, string problem)
    {
        metrics.FeedbackUnreadable(source);
        Log.Unreadable(logger, source, problem);
    }

    /// <summary>Notes SNS asking to confirm a subscription (or saying one ended). ion does not fetch the URL itself:
    /// it would make ion call out to wherever a caller pointed it, and SNS's own are reachable by the operator.</summary>
    public void SubscriptionMessage(string type, string? topicArn, string? subscribeUrl) =>
        Log.Subscription(logger, type, topicArn ?? "(no topic)", subscribeUrl ?? "(none)");

    private static partial class Log
    {
        [LoggerMessage(501, LogLevel.Information, "{Address} suppressed ({Reason}) by a {Source} report: {Detail}")]
        public static partial void Suppressed(ILogger logger, string address, string reason, string source, string detail);

        [LoggerMessage(502, LogLevel.Warning, "A {Source} report named {Count} recipient(s) whose address ion cannot read; they were skipped")]
        public static partial void RejectedRecipients(ILogger logger, string source, int count);

        [LoggerMessage(503, LogLevel.Warning, "A {Source} report could not be read and was refused: {Problem}")]
        public static partial void Unreadable(ILogger logger, string source, string problem);

        [LoggerMessage(504, LogLevel.Warning, "SNS sent a {Type} for topic {TopicArn}: to receive its notifications, an operator confirms by opening {SubscribeUrl}")]
        public static partial void Subscription(ILogger logger, string type, string topicArn, string subscribeUrl);
    }
}

/// <summary>Counts a report's recipients as it reads them; addresses are canonicalised on the way in.</summary>
internal sealed class FeedbackTally(string source)
{
    // Enough of a relay's words to say why; a report is not stored whole.
    private const int MaxDetail = 500;

    private readonly List<FeedbackItem> _suppress = [];
    private int _ignored;
    private int _rejected;

    public void Suppress(string? address, SuppressionReason reason, string detail, string? messageId)
    {
        if (address is null || !Addresses.TryCanonicalize(Bare(address), out var canonical, out _))
        {
            _rejected++;
            return;
        }
        detail = string.Join(' ', detail.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        _suppress.Add(new FeedbackItem(canonical, reason, detail.Length > MaxDetail ? detail[..MaxDetail] : detail,
            messageId is not null && MessageIds.IsIons(messageId) ? messageId : null));
    }

    public void Ignore(int count = 1) => _ignored += count;

    public FeedbackReport Report() => new(source, _suppress, _ignored, _rejected);

    // "<bob@y.example>" as some reports write it.
    private static string Bare(string address)
    {
        var trimmed = address.Trim();
        return trimmed is ['<', .., '>'] ? trimmed[1..^1].Trim() : trimmed;
    }
}
