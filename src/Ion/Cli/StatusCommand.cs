using System.CommandLine;
using System.Globalization;
using Ion.Log;

namespace Ion.Cli;

/// <summary><c>ion status ID</c>: the state and every attempt of one message, from the delivery log.</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        Argument<string> id = new("id") { Description = "The message id (the client's id, or the one ion printed when queuing)" };
        Command command = new("status", "Show the state and attempts of a message.") { id };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) => CliOutput.RunWithServicesAsync(parse, async services =>
        {
            var record = await services.GetRequiredService<IDeliveryLog>().GetAsync(parse.GetValue(id)!, cancellationToken);
            if (record is null)
                return CliOutput.Fail(CliOutput.Failed, $"no message with id '{parse.GetValue(id)}' in the delivery log");
            var state = StoredNames.Of(record.State);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{record.Id}: {state} (since {record.UpdatedAt:u})"));
            if (record.SendAt is { } sendAt)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  send at: {sendAt:u}"));
            if (record.LastReason is { } reason && record.State != MessageState.Sent)
                Console.WriteLine($"  reason: {reason}");
            foreach (var recipient in record.Recipients)
            {
                var outcome = recipient.State.ToString().ToLowerInvariant();
                Console.WriteLine(recipient.Reply is { } reply ? $"  {recipient.Address}: {outcome}: {reply}" : $"  {recipient.Address}: {outcome}");
            }
            var n = 0;
            foreach (var attempt in record.Attempts)
            {
                // Which relay took it, where the log says (attempts from before ion had a fallback do not).
                var relay = attempt.Relay is { } name ? $" via {name}" : "";
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  attempt {++n}: {attempt.At:u} {attempt.Outcome}{relay} {attempt.Duration.TotalMilliseconds:F0} ms: {attempt.Reply}"));
            }
            return CliOutput.Ok;
        }));
        return command;
    }
}
