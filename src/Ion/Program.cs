using System.CommandLine;
using Ion.Cli;

RootCommand root = new("ion: queued email delivery");
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(SendCommand.Create());
root.Subcommands.Add(PublishCommand.Create());
root.Subcommands.Add(StatusCommand.Create());
root.Subcommands.Add(DeadLettersCommand.Create());
root.Subcommands.Add(SuppressionsCommand.Create());
root.Subcommands.Add(AwsCommand.Create());
root.Subcommands.Add(StoreCommand.Create());
root.Options.Add(CommandLineSettings.Option);
var parse = root.Parse(CommandLineSettings.Carry(root, args));
return await parse.InvokeAsync(ServeCommand.Invocation(parse));
