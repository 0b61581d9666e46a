using Ion.Lambda.Harness;

// ion-lambda-harness: runs ion's Lambda bootstrap against an SQS queue on this machine, as Lambda's SQS event source
// would (see LambdaHarness). The function's settings come from this process's environment (Ion__…, AWS_…).
//   ion-lambda-harness --bootstrap PATH --service-url URL --queue-url URL [--feedback-queue-url URL] [--batch-size 10]
//                      [--timeout 60] [--parameter NAME=VALUE]...
Dictionary<string, string> parameters = [];
string? Value(string name)
{
    var at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
}
for (var i = 0; i < args.Length - 1; i++)
{
    if (args[i] == "--parameter" && args[i + 1].Split('=', 2) is [var name, var value])
        parameters[name] = value;
}
if (Value("--bootstrap") is not { } bootstrap || Value("--service-url") is not { } serviceUrl || Value("--queue-url") is not { } queueUrl)
{
    await Console.Error.WriteLineAsync("usage: ion-lambda-harness --bootstrap PATH --service-url URL --queue-url URL [--feedback-queue-url URL] [--batch-size N] [--timeout SECONDS] [--parameter NAME=VALUE]...");
    return 2;
}
await using var harness = await LambdaHarness.StartAsync(new HarnessOptions
{
    BootstrapPath = Path.GetFullPath(bootstrap),
    SqsServiceUrl = serviceUrl,
    QueueUrl = queueUrl,
    // A second event source mapping, as the Terraform module adds for SES's feedback queue.
    MoreQueueUrls = Value("--feedback-queue-url") is { } feedbackQueueUrl ? [feedbackQueueUrl] : [],
    BatchSize = int.Parse(Value("--batch-size") ?? "10", System.Globalization.CultureInfo.InvariantCulture),
    Timeout = TimeSpan.FromSeconds(int.Parse(Value("--timeout") ?? "60", System.Globalization.CultureInfo.InvariantCulture)),
    Parameters = parameters,
}, CancellationToken.None);
Console.WriteLine($"ion-lambda-harness: Runtime API on {harness.RuntimeApi}, polling {queueUrl}; Ctrl-C stops");
var stopped = new TaskCompletionSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stopped.TrySetResult(); };
using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM,
    c => { c.Cancel = true; stopped.TrySetResult(); });
// The first instance's cold start, once it answered (bench/run reads these lines).
while (!stopped.Task.IsCompleted && harness.ColdStartToFirstAnswer is null)
    await Task.WhenAny(stopped.Task, Task.Delay(50));
if (harness.ColdStartToFirstAnswer is { } answer)
    Console.WriteLine($"cold_start_next_ms={harness.ColdStartToNext?.TotalMilliseconds:F1} cold_start_answer_ms={answer.TotalMilliseconds:F1}");
await stopped.Task;
Console.WriteLine($"invocations={harness.Invocations} failed={harness.Failures} deleted={harness.Deleted} starts={harness.Starts} init_errors={harness.InitErrors.Count}");
return 0;
