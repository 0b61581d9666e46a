using Ion.Queues;
using Microsoft.Extensions.Options;

namespace Ion.Stores.Sqlite;

/// <summary><c>ion serve</c>'s start check of the SQLite file: a damaged file is refused before anything is sent from
/// it, since an outcome that cannot be recorded would be sent again (<see cref="SqliteRepair.ThrowIfDamaged"/>).</summary>
internal sealed class SqliteStoreCheck(IOptions<IonOptions> options) : IStoreCheck
{
    public Task CheckAsync(CancellationToken cancellationToken)
    {
        SqliteRepair.ThrowIfDamaged(options.Value.DatabasePath);
        return Task.CompletedTask;
    }
}
