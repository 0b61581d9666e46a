using System.CommandLine;

RootCommand root = new("ion: queued email delivery");
return await root.Parse(args).InvokeAsync();
