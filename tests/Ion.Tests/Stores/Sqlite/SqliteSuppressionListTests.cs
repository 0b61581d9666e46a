using Ion.Stores.Sqlite;
using Ion.Suppression;
using Ion.Tests.Suppression;

namespace Ion.Tests.Stores.Sqlite;

public sealed class SqliteSuppressionListTests : SuppressionListContract, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ion-suppression-").FullName;
    private readonly List<SqliteDatabase> _databases = [];

    protected override Task<ISuppressionList> CreateListAsync()
    {
        var database = new SqliteDatabase(Path.Combine(_folder, "ion.db"));
        _databases.Add(database);
        return Task.FromResult<ISuppressionList>(new SqliteSuppressionList(database));
    }

    public void Dispose()
    {
        foreach (var database in _databases)
            database.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }
}
