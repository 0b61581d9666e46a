using System.Net;
using System.Text;
using System.Text.Json;

namespace IonBench;

/// <summary>The message every benchmark publishes: one recipient and about 1 KB of plain text, the size of
/// <c>smtp-source -l 1024</c>'s payload.</summary>
internal static class BenchMessage
{
    // 16 lines of 63 characters and a line break: 1,024 bytes of 7-bit text that needs no encoding, so the DATA on
    // the wire is the body plus ion's headers.
    private static readonly string s_bodyText = string.Concat(Enumerable.Range(1, 16)
        .Select(line => $"ion bench payload line {line:D2} ".PadRight(63, 'x') + "\n"));

    private static readonly string s_bodyJson = JsonEncodedText.Encode(s_bodyText).ToString();

    public static string Id(string prefix, int number) => $"{prefix}-{number:D6}";

    /// <summary>The subject carries the id, so a message found in smtp-sink's dump is matched to its send time
    /// without knowing how ion derives its Message-ID.</summary>
    public static string Subject(string id) => $"bench {id}";

    public static string Json(string id) =>
        $$"""{"action":"send","id":"{{id}}","recipient":"rcpt@example.com","subject":"{{Subject(id)}}","body_text":"{{s_bodyJson}}"}""";

    public static StringContent Content(string id) => new(Json(id), Encoding.UTF8, "application/json");

    /// <summary>One client for all requests: pooled keep-alive connections to ion, as an application would hold.</summary>
    public static HttpClient CreateClient(int maxConnections) => new(new SocketsHttpHandler
    {
        MaxConnectionsPerServer = maxConnections,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        // ion is on loopback; an http_proxy in the environment must not sit in between.
        UseProxy = false,
    })
    {
        Timeout = TimeSpan.FromSeconds(60),
    };

    /// <summary>Throws unless ion answered 202: a benchmark that counts refused messages as accepted measures nothing.</summary>
    public static async Task EnsureAcceptedAsync(HttpResponseMessage response, string id, CancellationToken cancellationToken)
    {
        if (response.StatusCode == HttpStatusCode.Accepted)
            return;
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        throw new BenchFailure($"message {id}: HTTP {(int)response.StatusCode} {response.ReasonPhrase}: {body}");
    }
}

/// <summary>The benchmark cannot go on; the message is the one line printed on stderr.</summary>
internal sealed class BenchFailure(string message) : Exception(message);
