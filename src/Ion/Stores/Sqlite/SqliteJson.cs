using System.Text.Json;
using System.Text.Json.Serialization;
using Ion.Log;

namespace Ion.Stores.Sqlite;

/// <summary>The JSON in ion.db (recipients, attempts, a redrive's ids), written by generated code, not reflection.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(List<RecipientStatus>))]
[JsonSerializable(typeof(SqliteDeliveryLog.StoredAttempt))]
[JsonSerializable(typeof(List<SqliteDeliveryLog.StoredAttempt>))]
[JsonSerializable(typeof(List<string>))]
[JsonSerializable(typeof(IReadOnlyCollection<string>))]
internal sealed partial class SqliteJson : JsonSerializerContext;
