using System.CommandLine;

namespace IonBench;

/// <summary><c>ionbench http</c>: publishes N messages to <c>POST /v1/messages</c> as fast as C concurrent clients
/// can (closed loop: each client sends its next message when the previous one was accepted).</summary>
internal static class HttpCommand
{
    public static Command Create()
    {
        Option<string> url = new("--url") { Description = "ion's base URL, e.g. http://127.0.0.1:8780", Required = true };
        Option<int> count = new("--count") { Description = "messages to publish", Required = true };
        Option<int> clients = new("--clients") { Description = "concurrent requests", DefaultValueFactory = _ => 4 };
        Option<string> prefix = new("--id-prefix") { Description = "message ids are PREFIX-000001 …", DefaultValueFactory = _ => "bench" };
        Option<string?> sinkCounter = new("--sink-counter") { Description = "smtp-sink -c output: also wait until it counted --count messages more than at the start" };
        Option<int> timeout = new("--timeout-seconds") { DefaultValueFactory = _ => 600 };
        Command command = new("http", "Publish N messages over HTTP with C concurrent clients; prints start_ns, accepted_ns, accepted (and delivered_ns)")
        {
            url, count, clients, prefix, sinkCounter, timeout,
        };
        command.SetAction((parse, cancellationToken) => Run.Async(async () =>
        {
            var total = parse.GetValue(count);
            var parallel = parse.GetValue(clients);
            if (total < 1 || parallel < 1)
                throw new BenchFailure("--count and --clients must be at least 1");
            var endpoint = new Uri(new Uri(parse.GetValue(url)!), "/v1/messages");
            var idPrefix = parse.GetValue(prefix)!;
            var limit = TimeSpan.FromSeconds(parse.GetValue(timeout));
            using var client = BenchMessage.CreateClient(parallel);

            var next = -1;
            var accepted = 0;
            async Task PublishAllAsync()
            {
                int number;
                while ((number = Interlocked.Increment(ref next)) < total)
                {
                    var id = BenchMessage.Id(idPrefix, number + 1);
                    using var content = BenchMessage.Content(id);
                    using var response = await client.PostAsync(endpoint, content, cancellationToken);
                    await BenchMessage.EnsureAcceptedAsync(response, id, cancellationToken);
                    Interlocked.Increment(ref accepted);
                }
            }

            // Counted from what the sink already has, so a warm-up before this run does not count.
            var sinkBefore = parse.GetValue(sinkCounter) is { } before && File.Exists(before) ? SinkCounter.Read(before) : 0;
            var start = Clock.NowUnixNanoseconds();
            await Task.WhenAll(Enumerable.Range(0, parallel).Select(_ => Task.Run(PublishAllAsync, cancellationToken)));
            var acceptedAt = Clock.NowUnixNanoseconds();
            var line = $"start_ns={start} accepted_ns={acceptedAt} accepted={accepted}";
            if (parse.GetValue(sinkCounter) is { } counter)
            {
                var delivered = await SinkCounter.WaitForAsync(counter, sinkBefore + total, limit, cancellationToken);
                line += $" delivered_ns={Clock.UnixNanoseconds(delivered)}";
            }
            Console.WriteLine(line);
        }));
        return command;
    }
}
