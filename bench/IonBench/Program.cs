using System.CommandLine;
using IonBench;

RootCommand root = new("ionbench: the load side of bench/run (publishes to ion, writes JSON lines, measures latency through smtp-sink; the AWS emulators' ceiling and ion's DynamoDB log alone)");
root.Subcommands.Add(HttpCommand.Create());
root.Subcommands.Add(JsonlCommand.Create());
root.Subcommands.Add(WaitSinkCommand.Create());
root.Subcommands.Add(LatencyCommand.Create());
root.Subcommands.Add(SendPathCommand.Create());
root.Subcommands.Add(SqsCeilingCommand.Create());
root.Subcommands.Add(LogPathCommand.Create());
root.Subcommands.Add(StorePathCommand.Create());
root.Subcommands.Add(DynamoCountCommand.Create());
root.Subcommands.Add(WebhookReceiverCommand.Create());
return await root.Parse(args).InvokeAsync();
