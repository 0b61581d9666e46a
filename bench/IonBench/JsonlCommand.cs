using System.CommandLine;

namespace IonBench;

/// <summary><c>ionbench jsonl</c>: the input of <c>ion publish</c>, one benchmark message per line.</summary>
internal static class JsonlCommand
{
    public static Command Create()
    {
        Option<int> count = new("--count") { Required = true };
        Option<string> output = new("--out") { Description = "file to write", Required = true };
        Option<string> prefix = new("--id-prefix") { DefaultValueFactory = _ => "bench" };
        Command command = new("jsonl", "Write N benchmark messages as JSON lines") { count, output, prefix };
        command.SetAction((parse, cancellationToken) => Run.Async(async () =>
        {
            var idPrefix = parse.GetValue(prefix)!;
            await using var writer = new StreamWriter(parse.GetValue(output)!);
            for (var number = 1; number <= parse.GetValue(count); number++)
                await writer.WriteAsync(BenchMessage.Json(BenchMessage.Id(idPrefix, number)) + "\n");
        }));
        return command;
    }
}
