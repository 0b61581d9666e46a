using System.CommandLine;
using System.Text.Json.Nodes;
using Ion.Queues;

namespace Ion.Cli;

/// <summary><c>ion send</c>: builds one message from options and queues it (straight into the queue, no server needed).</summary>
internal static class SendCommand
{
    public static Command Create()
    {
        Option<string[]> to = new("--to") { Description = "Recipient address (repeat for more)", Required = true, AllowMultipleArgumentsPerToken = true };
        Option<string> subject = new("--subject") { Description = "Subject line", Required = true };
        Option<string?> text = new("--text") { Description = "Plain-text body" };
        Option<string?> html = new("--html") { Description = "HTML body" };
        Option<string?> from = new("--from") { Description = "Sender (must be the default or an allowed sender)" };
        Option<string[]> cc = new("--cc") { Description = "Cc address (repeat for more)" };
        Option<string[]> bcc = new("--bcc") { Description = "Bcc address (repeat for more)" };
        Option<string?> id = new("--id") { Description = "Idempotency key: a message with an id already sent is not sent again" };
        Command command = new("send", "Queue one email.") { to, subject, text, html, from, cc, bcc, id };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) => CliOutput.RunWithServicesAsync(parse, async services =>
        {
            var message = new JsonObject { ["action"] = "send" };
            void Add(string name, JsonNode? value)
            {
                if (value is not null)
                    message[name] = value;
            }
            static JsonArray? List(string[]? values) => values is { Length: > 0 } ? [.. values.Select(v => (JsonNode?)v)] : null;
            Add("id", parse.GetValue(id));
            Add("to", List(parse.GetValue(to)));
            Add("cc", List(parse.GetValue(cc)));
            Add("bcc", List(parse.GetValue(bcc)));
            Add("from", parse.GetValue(from));
            Add("subject", parse.GetValue(subject));
            Add("body_text", parse.GetValue(text));
            Add("body_html", parse.GetValue(html));
            var json = message.ToJsonString();
            var result = await services.GetRequiredService<Publisher>().PublishAsync([json], cancellationToken);
            if (result.Errors is [var invalid, ..])
                return CliOutput.Fail(CliOutput.Invalid, invalid.Error.Reason);
            Console.WriteLine(result.Messages[0].Id);
            return CliOutput.Ok;
        }));
        return command;
    }
}
