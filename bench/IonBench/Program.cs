using System.CommandLine;
using IonBench;

RootCommand root = new("ionbench: the load side of bench/run (publishes to ion, writes JSON lines, measures latency through smtp-sink)");
root.Subcommands.Add(HttpCommand.Create());
root.Subcommands.Add(JsonlCommand.Create());
root.Subcommands.Add(WaitSinkCommand.Create());
root.Subcommands.Add(LatencyCommand.Create());
root.Subcommands.Add(SendPathCommand.Create());
return await root.Parse(args).InvokeAsync();
