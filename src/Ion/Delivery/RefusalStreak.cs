namespace Ion.Delivery;

/// <summary>
/// Tells a relay that refuses everyone from a relay that refuses someone. A relay that refuses ion itself with a
/// plain 5xx ("554 5.7.1 Client host rejected", a policy block) looks, one message at a time, like permanent
/// refusals of each recipient, and would bury the whole backlog in the dead letters. The same refusal for several
/// different recipients in at least two domains in a row, with nothing accepted in between, is the relay's: from
/// then on it is answered as <see cref="OutcomeKind.RelayRefusesIon"/>, which pauses delivery instead.
/// </summary>
/// <remarks>
/// Address and mailbox refusals (X.1.x "no such user", X.2.x "mailbox disabled") and content refusals (X.6.x) are about
/// one recipient or message by definition and never make a streak, so a run of bad addresses is never mistaken for a
/// broken relay. Shared by all slots.
/// </remarks>
public sealed class RefusalStreak(int length = RefusalStreak.DefaultLength)
{
    public const int DefaultLength = 3;

    private readonly Lock _lock = new();
    private readonly List<(string Id, string Recipient, string Signature)> _run = [];
    private bool _recognised;
    // Each message is handed back for redrive by a streak once per process: if its refusal was its own after all,
    // it must end as a dead letter, not go round.
    private readonly HashSet<string> _handedBack = new(StringComparer.Ordinal);

    /// <summary>Reviews one send's answers. Returns them, with the streak's refusals reclassified once the streak is
    /// complete, and the ids of earlier messages that the streak dead-lettered and that should be redriven.</summary>
    public (DeliveryOutcome Outcome, IReadOnlyList<string> Redrive) Review(string messageId, DeliveryOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        lock (_lock)
        {
            foreach (var answer in outcome.Recipients)
            {
                if (answer.Answer.Kind == OutcomeKind.Accepted)
                    Clear();
                else if (answer.Answer.Kind == OutcomeKind.Permanent && Signature(answer.Answer) is { } signature)
                {
                    if (_run.Count > 0 && _run[^1].Signature != signature)
                        Clear();
                    _run.Add((messageId, answer.Address, signature));
                }
            }
            if (!IsComplete())
                return (outcome, []);

            var streakSignature = _run[^1].Signature;
            var reviewed = outcome.Recipients
                .Select(a => a.Answer.Kind == OutcomeKind.Permanent && Signature(a.Answer) == streakSignature
                    ? a with { Answer = a.Answer with { Kind = OutcomeKind.RelayRefusesIon, Text = $"{a.Answer.Text} (the same refusal for {_run.Count} recipients in a row: taken as the relay refusing ion)" } }
                    : a)
                .ToList();
            // Only what the streak dead-lettered before it was recognised; from then on its refusals pause instead.
            List<string> redrive = _recognised ? []
                : [.. _run.Select(r => r.Id).Where(id => id != messageId).Distinct(StringComparer.Ordinal).Where(_handedBack.Add)];
            _recognised = true;
            return (outcome with { Recipients = reviewed, Summary = reviewed.FirstOrDefault(r => r.Answer.IsAboutTheRelay)?.Answer ?? outcome.Summary }, redrive);
        }
    }

    private void Clear()
    {
        _run.Clear();
        _recognised = false;
    }

    private bool IsComplete() =>
        _run.Select(r => r.Recipient).Distinct(StringComparer.OrdinalIgnoreCase).Count() >= length
        && _run.Select(r => Domain(r.Recipient)).Distinct(StringComparer.OrdinalIgnoreCase).Count() >= 2;

    private static string Domain(string address) => address[(address.LastIndexOf('@') + 1)..];

    /// <summary>What makes two refusals "the same": code and enhanced code; null for refusals that are about one
    /// recipient or message by their enhanced code.</summary>
    private static string? Signature(SmtpAnswer answer)
    {
        var enhanced = answer.EnhancedCode;
        if (enhanced is not null && (enhanced[2..].StartsWith("1.", StringComparison.Ordinal)
            || enhanced[2..].StartsWith("2.", StringComparison.Ordinal)
            || enhanced[2..].StartsWith("6.", StringComparison.Ordinal)))
            return null;
        return $"{answer.Code} {enhanced}";
    }
}
