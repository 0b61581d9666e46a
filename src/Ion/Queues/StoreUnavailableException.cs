namespace Ion.Queues;

/// <summary>
/// The store (queue or delivery log) could not do what was asked: the file is locked by another process for longer
/// than the store waits, the disk is full, the service does not answer. What was asked did not happen, and may be
/// asked again. Each store turns its own errors into this one, so the core never names a store's exceptions.
/// </summary>
public sealed class StoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
