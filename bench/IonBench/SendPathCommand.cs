using System.CommandLine;
using System.Diagnostics;
using Ion.Delivery;
using Ion.Messages;

namespace IonBench;

/// <summary>
/// <c>ionbench send-path</c>: ion's per-message delivery work with everything else taken away. For N benchmark
/// messages it does what a worker slot does to each (parse the JSON, build the email with MimeKit, send it with
/// MailKit over ion's reused <see cref="SmtpSender"/> connection) straight into the relay, with no HTTP, no queue,
/// no delivery log. It is the most ion's delivery could do on this machine with these libraries: the gap between
/// smtp-source and this is the SMTP client's; the gap between this and ion end to end is ion's own.
/// </summary>
internal static class SendPathCommand
{
    public static Command Create()
    {
        Option<int> port = new("--port") { Description = "the relay's port on 127.0.0.1", Required = true };
        Option<int> count = new("--count") { Required = true };
        Option<int> connections = new("--connections") { DefaultValueFactory = _ => 1 };
        Option<int> warmup = new("--warmup") { Description = "messages sent first, untimed, as ion gets its warm-up", DefaultValueFactory = _ => 0 };
        Command command = new("send-path", "Parse, build and send N messages with ion's code, no queue; prints start_ns, done_ns, cpu_ns")
        {
            port, count, connections, warmup,
        };
        command.SetAction((parse, cancellationToken) => Run.Async(async () =>
        {
            var rules = new MessageRules("bench@bench.example", []);
            var options = new SmtpOptions { Host = "127.0.0.1", Port = parse.GetValue(port), Security = SmtpSecurity.None };
            var sessions = parse.GetValue(connections);
            await SendAllAsync(Bodies("warmup", parse.GetValue(warmup)));

            // The JSON is made before the clock starts: in ion it arrives from the queue.
            var bodies = Bodies("path", parse.GetValue(count));
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var start = Clock.Now();
            await SendAllAsync(bodies);
            var done = Clock.Now();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;

            static string[] Bodies(string prefix, int messages) =>
                [.. Enumerable.Range(1, messages).Select(n => BenchMessage.Json(BenchMessage.Id(prefix, n)))];

            // Each session sends every sessions-th message over its own reused connection, as a worker slot does.
            Task SendAllAsync(string[] bodies) =>
                Task.WhenAll(Enumerable.Range(0, sessions).Select(session => Task.Run(async () =>
                {
                    await using var sender = new SmtpSender(options, TimeProvider.System);
                    for (var n = session; n < bodies.Length; n += sessions)
                    {
                        if (MessageParser.Parse(bodies[n], rules) is not SendRequest send)
                            throw new BenchFailure($"message {n} did not parse as a send request");
                        var outcome = await sender.SendAsync(MimeBuilder.Build(send.Email, send.Email.Id!, rules),
                            send.Email.From ?? rules.DefaultSender, [.. send.Email.To, .. send.Email.Cc, .. send.Email.Bcc], cancellationToken);
                        if (outcome.Recipients.Any(r => r.Answer.Kind != OutcomeKind.Accepted))
                            throw new BenchFailure($"message {n}: {outcome.Summary.Reply}");
                    }
                }, cancellationToken)));

            Console.WriteLine($"start_ns={Clock.UnixNanoseconds(start)} done_ns={Clock.UnixNanoseconds(done)} cpu_ns={(long)(cpu.TotalMilliseconds * 1e6)}");
        }));
        return command;
    }
}
