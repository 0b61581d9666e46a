using System.CommandLine;

namespace IonBench;

/// <summary><c>ionbench wait-sink</c>: started before the load (e.g. <c>ion publish</c>), it reports when smtp-sink
/// counted N messages more than when it started, to within its 5 ms poll.</summary>
internal static class WaitSinkCommand
{
    public static Command Create()
    {
        Option<string> counter = new("--sink-counter") { Description = "smtp-sink -c output", Required = true };
        Option<int> count = new("--count") { Required = true };
        Option<int> timeout = new("--timeout-seconds") { DefaultValueFactory = _ => 600 };
        Command command = new("wait-sink", "Wait until smtp-sink counted N messages more than at the start; prints delivered_ns") { counter, count, timeout };
        command.SetAction((parse, cancellationToken) => Run.Async(async () =>
        {
            var path = parse.GetValue(counter)!;
            var before = File.Exists(path) ? SinkCounter.Read(path) : 0;
            var delivered = await SinkCounter.WaitForAsync(
                path, before + parse.GetValue(count), TimeSpan.FromSeconds(parse.GetValue(timeout)), cancellationToken);
            Console.WriteLine($"delivered_ns={Clock.UnixNanoseconds(delivered)}");
        }));
        return command;
    }
}
