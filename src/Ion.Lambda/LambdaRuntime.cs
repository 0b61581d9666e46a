using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Ion.Lambda;

/// <summary>
/// The client side of the Lambda Runtime API, the HTTP contract a custom runtime (<c>provided.al2023</c>) speaks with
/// the Lambda service at <c>AWS_LAMBDA_RUNTIME_API</c>: ask for the next invocation, post its response or its error,
/// or report that initialisation failed
/// (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html). Written here because no <c>Amazon.Lambda.*</c>
/// package is served to this project's builds; it is the whole of what <c>Amazon.Lambda.RuntimeSupport</c> would do
/// for ion.
/// </summary>
public sealed class LambdaRuntime : IDisposable
{
    private const string Version = "2018-06-01";
    private static readonly MediaTypeHeaderValue Json = new("application/json");
    private readonly HttpClient _http;

    public LambdaRuntime(string api)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(api);
        // "next" blocks until there is an invocation, for as long as the instance lives: no client timeout.
        _http = new HttpClient { BaseAddress = new Uri($"http://{api}/{Version}/runtime/"), Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>The runtime the Lambda service (or the local harness) gives this process.</summary>
    public static LambdaRuntime FromEnvironment() =>
        new(Environment.GetEnvironmentVariable("AWS_LAMBDA_RUNTIME_API")
            ?? throw new InvalidOperationException("AWS_LAMBDA_RUNTIME_API is not set: this is the Lambda bootstrap, run by Lambda or by its local harness"));

    /// <summary>Waits for the next invocation: its request id, its deadline, and the event.</summary>
    public async Task<Invocation> NextAsync(CancellationToken cancellationToken)
    {
        using var response = await _http.GetAsync("invocation/next", cancellationToken);
        response.EnsureSuccessStatusCode();
        var requestId = Header(response, "Lambda-Runtime-Aws-Request-Id")
            ?? throw new InvalidOperationException("the Runtime API gave an invocation without Lambda-Runtime-Aws-Request-Id");
        var deadline = long.TryParse(Header(response, "Lambda-Runtime-Deadline-Ms"), NumberStyles.None, CultureInfo.InvariantCulture, out var ms)
            ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
            : throw new InvalidOperationException("the Runtime API gave an invocation without Lambda-Runtime-Deadline-Ms");
        // The SDKs read the trace id from the environment to propagate X-Ray tracing.
        if (Header(response, "Lambda-Runtime-Trace-Id") is { } trace)
            Environment.SetEnvironmentVariable("_X_AMZN_TRACE_ID", trace);
        return new Invocation(requestId, deadline, await response.Content.ReadAsByteArrayAsync(cancellationToken));
    }

    public Task RespondAsync(string requestId, byte[] body, CancellationToken cancellationToken) =>
        PostAsync($"invocation/{Uri.EscapeDataString(requestId)}/response", body, null, cancellationToken);

    /// <summary>The invocation failed as a whole: Lambda treats every record of the batch as failed.</summary>
    public Task FailAsync(string requestId, Exception error, CancellationToken cancellationToken) =>
        PostAsync($"invocation/{Uri.EscapeDataString(requestId)}/error", Error(error), error.GetType().Name, cancellationToken);

    /// <summary>Start-up failed (a missing setting, an unreadable secret): Lambda reports it and starts again later.</summary>
    public Task InitFailedAsync(Exception error, CancellationToken cancellationToken) =>
        PostAsync("init/error", Error(error), error.GetType().Name, cancellationToken);

    private async Task PostAsync(string path, byte[] body, string? errorType, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = Json;
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        if (errorType is not null)
            request.Headers.Add("Lambda-Runtime-Function-Error-Type", "Runtime." + errorType);
        using var response = await _http.SendAsync(request, cancellationToken);
        response.EnsureSuccessStatusCode();
    }

    /// <summary>The Runtime API's error document: <c>{"errorMessage", "errorType", "stackTrace"}</c>.</summary>
    private static byte[] Error(Exception error)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("errorMessage", error.Message);
            json.WriteString("errorType", error.GetType().Name);
            json.WriteStartArray("stackTrace");
            foreach (var line in (error.StackTrace ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                json.WriteStringValue(line);
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    public void Dispose() => _http.Dispose();
}

/// <summary>One invocation: answer it by <see cref="Deadline"/>, or Lambda stops the instance.</summary>
public sealed record Invocation(string RequestId, DateTimeOffset Deadline, byte[] Event);
