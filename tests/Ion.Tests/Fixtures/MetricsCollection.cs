namespace Ion.Tests.Fixtures;

/// <summary>
/// Tests that read ion's numbers off <c>/metrics</c> run alone. OpenTelemetry listens to meters by name, process-wide:
/// every in-process ion of the test run has a meter named <c>Ion</c>, so another ion delivering at the same time would
/// add to the counts one test reads (a real deployment runs one ion per process).
/// </summary>
[CollectionDefinition(nameof(MetricsCollection), DisableParallelization = true)]
public sealed class MetricsCollection;
