namespace Ion.Queues;

/// <summary>
/// Whether the store takes writes now, as the last publish, receive or API call found it: one place for what a full
/// disk or a store outage means to the rest of ion. <c>/readyz</c> answers 503 while it is failing, the API answers
/// 503 with its title, the metric <c>ion.store.failing</c> shows it, and the log says it once per change (failing,
/// why, writable again) instead of once per request.
/// </summary>
public sealed class StoreHealth(TimeProvider time, ILogger<StoreHealth> logger)
{
    private readonly Lock _lock = new();
    private StoreProblem? _problem;

    /// <summary>What is wrong now; null while writes succeed.</summary>
    public StoreProblem? Problem
    {
        get
        {
            lock (_lock)
                return _problem;
        }
    }

    public void Failed(StoreUnavailableException error)
    {
        ArgumentNullException.ThrowIfNull(error);
        lock (_lock)
        {
            if (_problem?.Fault == error.Fault)
                return;
            _problem = new StoreProblem(error.Fault, error.Message, time.GetUtcNow());
        }
        Log.StoreFailing(logger, StoreProblem.TitleOf(error.Fault), error.Message);
    }

    public void Succeeded()
    {
        StoreProblem? was;
        lock (_lock)
        {
            // A damaged store stays damaged (the SQLite store fails everything once it knows), whatever succeeds.
            if (_problem is null or { Fault: StoreFault.Damaged })
                return;
            (was, _problem) = (_problem, null);
        }
        Log.StoreBack(logger, StoreProblem.TitleOf(was.Fault), (time.GetUtcNow() - was.Since).TotalSeconds);
    }
}

/// <summary>Why the store cannot be written, since when.</summary>
public sealed record StoreProblem(StoreFault Fault, string Reason, DateTimeOffset Since)
{
    /// <summary>What an API problem and the health check call it: <c>storage full</c>, <c>store unavailable</c>,
    /// <c>store damaged</c>.</summary>
    public string Title => TitleOf(Fault);

    /// <summary>How long a client should wait before asking again: a full disk is not freed in seconds.</summary>
    public TimeSpan RetryAfter => Fault == StoreFault.Unavailable ? TimeSpan.FromSeconds(5) : TimeSpan.FromSeconds(30);

    public static string TitleOf(StoreFault fault) => fault switch
    {
        StoreFault.Full => "storage full",
        StoreFault.Damaged => "store damaged",
        _ => "store unavailable",
    };
}
