namespace Ion.Queues;

/// <summary>
/// The store (queue or delivery log) could not do what was asked: the file is locked by another process for longer
/// than the store waits, the disk is full, the service does not answer, the file is damaged. What was asked did not
/// happen, and may be asked again, except when the store is <see cref="StoreFault.Damaged"/>. Each store turns its own
/// errors into this one, so the core never names a store's exceptions.
/// </summary>
public sealed class StoreUnavailableException(string message, Exception? inner = null, StoreFault fault = StoreFault.Unavailable) : Exception(message, inner)
{
    public StoreFault Fault { get; } = fault;
}

/// <summary>Why a store cannot do what was asked.</summary>
public enum StoreFault
{
    /// <summary>It does not answer, or not in time (locked, unreachable, throttling): asking again later may work.</summary>
    Unavailable,
    /// <summary>It has no room left to write (a full disk): asking again works once space is freed.</summary>
    Full,
    /// <summary>Its data is damaged (a malformed database file): asking again will not help; an operator must repair it.</summary>
    Damaged,
}
