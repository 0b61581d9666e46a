using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Amazon.Runtime;
using Amazon.SQS;
using Amazon.SQS.Model;

namespace Ion.Lambda.Harness;

/// <summary>
/// Lambda with an SQS event source, on one machine: what runs ion's Lambda <c>bootstrap</c> in the tests and for a
/// developer. It is the two halves AWS would run:
/// <list type="bullet">
/// <item>the Runtime API (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html) on 127.0.0.1, served to one
/// real bootstrap process it starts (<c>AWS_LAMBDA_RUNTIME_API</c>), restarted when it exits or times out, as Lambda
/// replaces a failed instance;</item>
/// <item>the SQS event source (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html): it polls the queue, hands
/// each batch to the function as an SQS event with a deadline, and then deletes the records the function did not list
/// in <c>batchItemFailures</c>. An error, a timeout, a crash or an answer it cannot read deletes nothing: the records
/// come back after their visibility timeout. <see cref="HarnessOptions.MoreQueueUrls"/> are event source mappings of
/// their own (the feedback queue), polled in turn; each record names its queue by ARN (<c>eventSourceARN</c>), as
/// Lambda's do.</item>
/// </list>
/// One instance, one invocation at a time (a function with reserved concurrency 1). It also answers SSM's
/// <c>GetParameter</c> for <see cref="HarnessOptions.Parameters"/>, so the function reads its SMTP password as it would
/// on AWS.
/// </summary>
public sealed class LambdaHarness : IAsyncDisposable
{
    private readonly HarnessOptions _options;
    private readonly AmazonSQSClient _sqs;
    private readonly Channel<PendingInvocation> _invocations = Channel.CreateUnbounded<PendingInvocation>();
    private readonly Dictionary<string, PendingInvocation> _pending = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private WebApplication? _api;
    private Process? _process;
    private Task? _polling;
    private long _processStartedAt;
    private readonly List<EventSource> _sources = [];

    private LambdaHarness(HarnessOptions options)
    {
        _options = options;
        _sqs = new AmazonSQSClient(new BasicAWSCredentials("test", "test"),
            new AmazonSQSConfig { ServiceURL = options.SqsServiceUrl, AuthenticationRegion = options.Region });
    }

    /// <summary>The Runtime API's address, <c>127.0.0.1:PORT</c>.</summary>
    public string RuntimeApi { get; private set; } = "";

    /// <summary>The bootstrap process now running (a test may kill it).</summary>
    public Process? Process => _process;

    public int Invocations { get; private set; }
    public int Failures { get; private set; }
    public int Starts { get; private set; }
    public List<string> InitErrors { get; } = [];
    /// <summary>Records the event source deleted after an answer (those it did not list as failed; SQS takes a
    /// delete of a message the function deleted itself as done too).</summary>
    public int Deleted { get; private set; }
    /// <summary>The first instance's cold start: process start → its first request for an invocation, and → its first
    /// answer (that first invocation's work included).</summary>
    public TimeSpan? ColdStartToNext { get; private set; }
    public TimeSpan? ColdStartToFirstAnswer { get; private set; }

    public static async Task<LambdaHarness> StartAsync(HarnessOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var harness = new LambdaHarness(options);
        try
        {
            await harness.StartApiAsync(cancellationToken);
            await harness.FindSourcesAsync(cancellationToken);
            harness.StartInstance();
            harness._polling = Task.Run(() => harness.PollAsync(harness._stop.Token), CancellationToken.None);
            return harness;
        }
        catch
        {
            await harness.DisposeAsync();
            throw;
        }
    }

    /// <summary>Each queue's ARN, which a mapping knows its queue by and writes into every record.</summary>
    private async Task FindSourcesAsync(CancellationToken cancellationToken)
    {
        foreach (var url in new[] { _options.QueueUrl }.Concat(_options.MoreQueueUrls))
        {
            var attributes = await _sqs.GetQueueAttributesAsync(new GetQueueAttributesRequest { QueueUrl = url, AttributeNames = ["QueueArn"] }, cancellationToken);
            _sources.Add(new EventSource(url, attributes.Attributes?.GetValueOrDefault("QueueArn")
                ?? throw new InvalidOperationException($"SQS gave no QueueArn for {url}")));
        }
    }

    private async Task StartApiAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        const string Runtime = "/2018-06-01/runtime";
        app.MapGet($"{Runtime}/invocation/next", NextAsync);
        app.MapPost($"{Runtime}/invocation/{{id}}/response", (string id, HttpRequest request) => AnswerAsync(id, request, error: false));
        app.MapPost($"{Runtime}/invocation/{{id}}/error", (string id, HttpRequest request) => AnswerAsync(id, request, error: true));
        app.MapPost($"{Runtime}/init/error", async (HttpRequest request) =>
        {
            using var reader = new StreamReader(request.Body);
            var body = await reader.ReadToEndAsync();
            lock (_lock)
                InitErrors.Add(body);
            return Results.Accepted();
        });
        // SSM's JSON protocol: POST / with X-Amz-Target: AmazonSSM.GetParameter.
        app.MapPost("/", async (HttpRequest request) =>
        {
            if (request.Headers["X-Amz-Target"] != "AmazonSSM.GetParameter")
                return Results.BadRequest();
            using var json = await JsonDocument.ParseAsync(request.Body);
            var name = json.RootElement.GetProperty("Name").GetString() ?? "";
            // SSM's own member names, PascalCase (Results.Json would write camelCase).
            return _options.Parameters.TryGetValue(name, out var value)
                ? Results.Text(JsonSerializer.Serialize(new { Parameter = new { Name = name, Type = "SecureString", Value = value, Version = 1 } }),
                    "application/x-amz-json-1.1")
                : Results.Text(JsonSerializer.Serialize(new { __type = "ParameterNotFound", message = $"Parameter {name} not found." }),
                    "application/x-amz-json-1.1", statusCode: 400);
        });
        app.MapGet("/ping", () => Results.Ok());
        await app.StartAsync(cancellationToken);
        _api = app;
        RuntimeApi = new Uri(app.Urls.First()).Authority;
        // Kestrel's and the routes' first requests are slow (JIT): served once here, they do not count in the
        // instance's cold start.
        using var client = new HttpClient { BaseAddress = new Uri($"http://{RuntimeApi}") };
        for (var i = 0; i < 3; i++)
            (await client.GetAsync("/ping", cancellationToken)).EnsureSuccessStatusCode();
        _ = await client.PostAsync($"/2018-06-01/runtime/invocation/warm-up/response", new ByteArrayContent([]), cancellationToken);
    }

    private async Task NextAsync(HttpContext context)
    {
        lock (_lock)
        {
            if (ColdStartToNext is null && Starts == 1)
                ColdStartToNext = Stopwatch.GetElapsedTime(_processStartedAt);
        }
        PendingInvocation invocation;
        try
        {
            invocation = await _invocations.Reader.ReadAsync(context.RequestAborted);
        }
        catch (OperationCanceledException)
        {
            return; // the instance went away while waiting
        }
        var response = context.Response;
        response.Headers["Lambda-Runtime-Aws-Request-Id"] = invocation.RequestId;
        response.Headers["Lambda-Runtime-Deadline-Ms"] = invocation.Deadline.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
        response.Headers["Lambda-Runtime-Invoked-Function-Arn"] = "arn:aws:lambda:" + _options.Region + ":000000000000:function:ion";
        response.Headers["Lambda-Runtime-Trace-Id"] = "Root=1-00000000-000000000000000000000000;Sampled=0";
        response.ContentType = "application/json";
        await response.Body.WriteAsync(invocation.Event, context.RequestAborted);
    }

    private async Task<IResult> AnswerAsync(string id, HttpRequest request, bool error)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer);
        PendingInvocation? invocation;
        lock (_lock)
        {
            if (!_pending.Remove(id, out invocation))
                return Results.BadRequest(new { errorMessage = $"no invocation {id} is pending", errorType = "InvalidRequestID" });
            if (ColdStartToFirstAnswer is null && Starts == 1)
                ColdStartToFirstAnswer = Stopwatch.GetElapsedTime(_processStartedAt);
        }
        invocation.Answer.TrySetResult(new InvocationAnswer(error, buffer.ToArray()));
        return Results.Accepted();
    }

    private void StartInstance()
    {
        var start = new ProcessStartInfo(_options.BootstrapPath)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(_options.BootstrapPath) ?? ".",
        };
        start.Environment["AWS_LAMBDA_RUNTIME_API"] = RuntimeApi;
        start.Environment["AWS_REGION"] = _options.Region;
        start.Environment["AWS_LAMBDA_FUNCTION_NAME"] = "ion";
        start.Environment["AWS_LAMBDA_FUNCTION_TIMEOUT"] = ((int)_options.Timeout.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        // Its SSM parameters come from here too.
        if (_options.Parameters.Count > 0)
            start.Environment["Ion__Lambda__SsmServiceUrl"] = $"http://{RuntimeApi}";
        foreach (var (name, value) in _options.Environment)
            start.Environment[name] = value;
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) _options.Output(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) _options.Output(e.Data); };
        lock (_lock)
        {
            Starts++;
            _processStartedAt = Stopwatch.GetTimestamp();
        }
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
    }

    /// <summary>The event source: receive a batch, invoke, delete what succeeded.</summary>
    private async Task PollAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                if (_process is { HasExited: true })
                {
                    // Lambda does not restart a failing instance in a tight loop either.
                    await Task.Delay(TimeSpan.FromMilliseconds(500), stop);
                    _process.Dispose();
                    StartInstance();
                }
                List<Received> mixed = [];
                foreach (var source in _sources)
                {
                    var received = await _sqs.ReceiveMessageAsync(new ReceiveMessageRequest
                    {
                        QueueUrl = source.QueueUrl,
                        MaxNumberOfMessages = _options.BatchSize,
                        WaitTimeSeconds = 1,
                        MessageSystemAttributeNames = ["All"],
                        MessageAttributeNames = ["All"],
                    }, stop);
                    if (received.Messages is not { Count: > 0 } messages)
                        continue;
                    List<Received> batch = [.. messages.Select(m => new Received(m, source))];
                    if (_options.MixQueues)
                        mixed.AddRange(batch);
                    else
                        await InvokeAsync(batch, stop);
                }
                if (mixed.Count > 0)
                    await InvokeAsync(mixed, stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception error)
            {
                _options.Output($"harness: {error.GetType().Name}: {error.Message}");
                await Task.Delay(TimeSpan.FromMilliseconds(200), stop);
            }
        }
    }

    private async Task InvokeAsync(List<Received> messages, CancellationToken stop)
    {
        var invocation = new PendingInvocation(Guid.NewGuid().ToString(), TimeProvider.System.GetUtcNow() + _options.Timeout, Event(messages));
        lock (_lock)
        {
            _pending[invocation.RequestId] = invocation;
            Invocations++;
        }
        await _invocations.Writer.WriteAsync(invocation, stop);
        var process = _process!;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(_options.Timeout);
        var exited = process.WaitForExitAsync(timeout.Token);
        var done = await Task.WhenAny(invocation.Answer.Task, exited, Task.Delay(Timeout.Infinite, timeout.Token));
        lock (_lock)
            _pending.Remove(invocation.RequestId);
        stop.ThrowIfCancellationRequested();

        if (done != invocation.Answer.Task || invocation.Answer.Task.Result.Error)
        {
            // Timed out, crashed, or failed as a whole: nothing is deleted. A timed-out instance is stopped, as
            // Lambda stops it; a new one starts for the next batch.
            lock (_lock)
                Failures++;
            if (done != invocation.Answer.Task && !process.HasExited)
                process.Kill(entireProcessTree: true);
            // A request it took before it died must not be handed to the next instance.
            while (_invocations.Reader.TryRead(out _))
            {
            }
            _options.Output($"harness: invocation {invocation.RequestId} " + (done == invocation.Answer.Task ? "failed" : process.HasExited ? "crashed" : "timed out"));
            return;
        }
        var failed = FailedRecords(invocation.Answer.Task.Result.Body, messages);
        foreach (var delete in messages.Where(m => !failed.Contains(m.Message.MessageId)).GroupBy(m => m.Source.QueueUrl))
        {
            await _sqs.DeleteMessageBatchAsync(new DeleteMessageBatchRequest
            {
                QueueUrl = delete.Key,
                Entries = [.. delete.Select((m, i) => new DeleteMessageBatchRequestEntry(i.ToString(CultureInfo.InvariantCulture), m.Message.ReceiptHandle))],
            }, stop);
            lock (_lock)
                Deleted += delete.Count();
        }
    }

    /// <summary>The records the function listed as failed; every record when the answer is not a batch response (as
    /// Lambda treats an unreadable one).</summary>
    private static HashSet<string> FailedRecords(byte[] answer, List<Received> received)
    {
        var messages = received.Select(r => r.Message).ToList();
        try
        {
            using var json = JsonDocument.Parse(answer);
            if (!json.RootElement.TryGetProperty("batchItemFailures", out var failures) || failures.ValueKind != JsonValueKind.Array)
                return [];
            var ids = failures.EnumerateArray().Select(f => f.GetProperty("itemIdentifier").GetString() ?? "").ToHashSet(StringComparer.Ordinal);
            return ids.All(id => messages.Any(m => m.MessageId == id)) ? ids : [.. messages.Select(m => m.MessageId)];
        }
        catch (Exception error) when (error is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return [.. messages.Select(m => m.MessageId)];
        }
    }

    /// <summary>The SQS event, shaped as Lambda's event source shapes it.</summary>
    private byte[] Event(List<Received> received)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("Records");
            foreach (var (message, source) in received)
            {
                json.WriteStartObject();
                json.WriteString("messageId", message.MessageId);
                json.WriteString("receiptHandle", message.ReceiptHandle);
                json.WriteString("body", message.Body);
                json.WriteStartObject("attributes");
                foreach (var (name, value) in message.Attributes ?? [])
                    json.WriteString(name, value);
                json.WriteEndObject();
                json.WriteStartObject("messageAttributes");
                foreach (var (name, value) in message.MessageAttributes ?? [])
                {
                    json.WriteStartObject(name);
                    json.WriteString("stringValue", value.StringValue);
                    json.WriteStartArray("stringListValues");
                    json.WriteEndArray();
                    json.WriteStartArray("binaryListValues");
                    json.WriteEndArray();
                    json.WriteString("dataType", value.DataType);
                    json.WriteEndObject();
                }
                json.WriteEndObject();
                json.WriteString("md5OfBody", message.MD5OfBody);
                json.WriteString("eventSource", "aws:sqs");
                json.WriteString("eventSourceARN", source.QueueArn);
                json.WriteString("awsRegion", _options.Region);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_polling is not null)
            await _polling.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(CancellationToken.None);
        }
        _process?.Dispose();
        if (_api is not null)
            await _api.DisposeAsync();
        _sqs.Dispose();
        _stop.Dispose();
    }

    private sealed record PendingInvocation(string RequestId, DateTimeOffset Deadline, byte[] Event)
    {
        public TaskCompletionSource<InvocationAnswer> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed record InvocationAnswer(bool Error, byte[] Body);

    private sealed record EventSource(string QueueUrl, string QueueArn);

    private sealed record Received(Message Message, EventSource Source);
}

public sealed class HarnessOptions
{
    /// <summary>The function: a <c>bootstrap</c> executable (NativeAOT), or any program that speaks the Runtime API.</summary>
    public required string BootstrapPath { get; init; }
    public required string SqsServiceUrl { get; init; }
    public required string QueueUrl { get; init; }
    /// <summary>More queues, each an event source mapping of its own (the feedback queue).</summary>
    public IReadOnlyList<string> MoreQueueUrls { get; init; } = [];
    /// <summary>Hand over one batch with the records of every queue, which no event source mapping does: to show that
    /// the function tells them apart by each record's <c>eventSourceARN</c>.</summary>
    public bool MixQueues { get; init; }
    public string Region { get; init; } = "us-east-1";
    /// <summary>The event source mapping's batch_size (SQS gives at most 10 per receive).</summary>
    public int BatchSize { get; init; } = 10;
    /// <summary>The function's timeout: the deadline of each invocation.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>The function's environment (its configuration), added to this process's own.</summary>
    public Dictionary<string, string> Environment { get; init; } = [];
    /// <summary>SSM parameters the function may read, by name.</summary>
    public Dictionary<string, string> Parameters { get; init; } = [];
    /// <summary>Where the function's output and the harness's own notes go.</summary>
    public Action<string> Output { get; init; } = Console.WriteLine;
}
