using Ion.Tests.Fixtures;

namespace Ion.Tests.Deploy;

/// <summary>deploy/terraform/modules/ion and examples/basic, read once for the class (there is no Terraform binary
/// here: see <see cref="TerraformConfig"/>).</summary>
public sealed class TerraformFixture : IAsyncLifetime
{
    public const string ModuleSource = "../../modules/ion";

    private TerraformConfig? _module;
    private TerraformConfig? _example;

    public static string RepositoryRoot => Repository.Root;

    public static string ModuleDirectory => Path.Combine(RepositoryRoot, "deploy", "terraform", "modules", "ion");

    public static string ExampleDirectory => Path.Combine(RepositoryRoot, "deploy", "terraform", "examples", "basic");

    public TerraformConfig Module => _module ?? throw new InvalidOperationException("not loaded");

    public TerraformConfig Example => _example ?? throw new InvalidOperationException("not loaded");

    public async ValueTask InitializeAsync()
    {
        var token = TestContext.Current.CancellationToken;
        var module = TerraformConfig.LoadAsync(ModuleDirectory, token);
        var example = TerraformConfig.LoadAsync(ExampleDirectory, token);
        _module = await module;
        _example = await example;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
