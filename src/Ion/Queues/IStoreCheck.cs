namespace Ion.Queues;

/// <summary>A store's check, when <c>ion serve</c> starts, that what the settings name exists and answers, so a wrong
/// setting stops ion at once with its name instead of failing every receive; and that what it holds is sound (SQLite:
/// a damaged file is refused).</summary>
public interface IStoreCheck
{
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">A setting names something missing,
    /// or something ion may not use; each failure names its setting.</exception>
    /// <exception cref="StoreUnavailableException">The store did not answer, or is damaged
    /// (<see cref="StoreFault.Damaged"/>).</exception>
    Task CheckAsync(CancellationToken cancellationToken);
}
