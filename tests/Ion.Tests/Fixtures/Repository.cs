namespace Ion.Tests.Fixtures;

/// <summary>The repository the tests run from: the folder above the test binaries that holds ion.slnx.</summary>
public static class Repository
{
    private static readonly Lazy<string> Found = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "ion.slnx")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"no ion.slnx above {AppContext.BaseDirectory}");
    });

    public static string Root => Found.Value;

    /// <summary>A path under the root, e.g. <c>Path("deploy", "prometheus")</c>.</summary>
    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);
}
