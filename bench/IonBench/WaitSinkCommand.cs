using System.CommandLine;

namespace IonBench;

/// <summary><c>ionbench wait-sink</c>: started before the load (e.g. <c>ion publish</c>), it reports when smtp-sink
/// counted N messages more than when it started, to within its 5 ms poll. With <c>--first</c> it also reports when the
/// sink counted the first of them (a backlog drain's rate is N over the time from the first to the last).</summary>
internal static class WaitSinkCommand
{
    public static Command Create()
    {
        Option<string> counter = new("--sink-counter") { Description = "smtp-sink -c output", Required = true };
        Option<int> count = new("--count") { Required = true };
        Option<int> timeout = new("--timeout-seconds") { DefaultValueFactory = _ => 600 };
        Option<bool> first = new("--first") { Description = "also print first_ns: when the first of the N was counted" };
        Command command = new("wait-sink", "Wait until smtp-sink counted N messages more than at the start; prints delivered_ns") { counter, count, timeout, first };
        command.SetAction((parse, cancellationToken) => Run.Async(async () =>
        {
            var path = parse.GetValue(counter)!;
            var before = File.Exists(path) ? SinkCounter.Read(path) : 0;
            var limit = TimeSpan.FromSeconds(parse.GetValue(timeout));
            var firstAt = parse.GetValue(first) ? await SinkCounter.WaitForAsync(path, before + 1, limit, cancellationToken) : (DateTimeOffset?)null;
            var delivered = await SinkCounter.WaitForAsync(path, before + parse.GetValue(count), limit, cancellationToken);
            Console.WriteLine(firstAt is { } at
                ? $"first_ns={Clock.UnixNanoseconds(at)} delivered_ns={Clock.UnixNanoseconds(delivered)}"
                : $"delivered_ns={Clock.UnixNanoseconds(delivered)}");
        }));
        return command;
    }
}
