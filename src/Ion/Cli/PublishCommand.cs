using System.CommandLine;
using System.Text.Json;
using Ion.Queues;

namespace Ion.Cli;

/// <summary><c>ion publish FILE|- [--topic-arn ARN]</c>: raw JSON, one message or JSON lines, validated all together and
/// queued (on AWS: published to the topic).</summary>
internal static class PublishCommand
{
    private const int BatchSize = 1000;

    public static Command Create()
    {
        Argument<string> file = new("file") { Description = "A JSON file with one message, or one message per line; '-' reads standard input" };
        Option<string> topicArn = new("--topic-arn")
        {
            Description = "Publish to this SNS topic (the AWS store: the same as --Ion:Store Aws --Ion:Aws:TopicArn ARN)",
        };
        Command command = new("publish", "Queue raw JSON messages (the message contract, as an application would publish them).") { file, topicArn };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) => CliOutput.RunWithServicesAsync(parse, async services =>
        {
            var path = parse.GetValue(file)!;
            if (await CliOutput.ReadInputAsync(path, cancellationToken) is not { } content)
                return CliOutput.Fail(CliOutput.Invalid, $"no such file: {path}");

            var (bodies, lines) = Split(content);
            if (bodies.Count == 0)
                return CliOutput.Fail(CliOutput.Invalid, "no message in the input");

            var publisher = services.GetRequiredService<Publisher>();
            // Validate everything before queuing anything, so a bad line 9,000 doesn't leave 8,999 queued.
            var check = bodies.Select((body, index) => publisher.Validate(body) is { } invalid ? new PublishError(index, invalid) : null)
                .OfType<PublishError>().ToList();
            if (check.Count > 0)
            {
                foreach (var failure in check.Take(20))
                    Console.Error.WriteLine($"line {lines[failure.Index]}: {failure.Error.Reason}");
                return CliOutput.Fail(CliOutput.Invalid, $"{check.Count} of {bodies.Count} message(s) invalid; nothing was queued");
            }
            var queued = 0;
            for (var start = 0; start < bodies.Count; start += BatchSize)
            {
                var batch = bodies.GetRange(start, Math.Min(BatchSize, bodies.Count - start));
                var result = await publisher.PublishAsync(batch, cancellationToken);
                foreach (var published in result.Messages)
                    Console.WriteLine(published.Id);
                queued += result.Messages.Count;
                if (bodies.Count > BatchSize)
                    Console.Error.Write($"\rqueued {queued}/{bodies.Count}");
            }
            if (bodies.Count > BatchSize)
                Console.Error.WriteLine();
            return CliOutput.Ok;
        }, parse.GetValue(topicArn) is { Length: > 0 } arn ? ["--Ion:Store=Aws", $"--Ion:Aws:TopicArn={arn}"] : null));
        return command;
    }

    /// <summary>One JSON document (possibly spread over lines) or JSON lines; returns the messages and the line each starts on.</summary>
    private static (List<string> Bodies, List<int> Lines) Split(string content)
    {
        var trimmed = content.Trim();
        if (trimmed.Length > 0 && IsSingleDocument(trimmed))
            return ([trimmed], [1 + content[..content.IndexOf(trimmed[0], StringComparison.Ordinal)].Count(c => c == '\n')]);
        List<string> bodies = [];
        List<int> lines = [];
        var number = 0;
        foreach (var line in content.Split('\n'))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line))
                continue;
            bodies.Add(line.TrimEnd('\r'));
            lines.Add(number);
        }
        return (bodies, lines);
    }

    private static bool IsSingleDocument(string text)
    {
        try
        {
            using var document = JsonDocument.Parse(text);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
