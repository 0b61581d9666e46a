using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace IonBench;

/// <summary><c>ionbench webhook-receiver --port P [--delay-ms D]</c>: a webhook receiver for bench/run's events figures,
/// on 127.0.0.1, answering 200 to every POST after D ms (a slow receiver), and printing how many it took when stopped.</summary>
internal static class WebhookReceiverCommand
{
    public static Command Create()
    {
        Option<int> port = new("--port") { Required = true, Description = "The port on 127.0.0.1" };
        Option<int> delay = new("--delay-ms") { Description = "How long each answer takes", DefaultValueFactory = _ => 0 };
        Command command = new("webhook-receiver", "A webhook receiver that answers 200 after a delay, until stopped (TERM).") { port, delay };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var wait = TimeSpan.FromMilliseconds(parse.GetValue(delay));
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls($"http://127.0.0.1:{parse.GetValue(port)}");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            long taken = 0;
            app.MapPost("/{**path}", async (HttpRequest request) =>
            {
                // Read whole, as a receiver checking the signature would.
                using var reader = new StreamReader(request.Body);
                await reader.ReadToEndAsync();
                if (wait > TimeSpan.Zero)
                    await Task.Delay(wait);
                Interlocked.Increment(ref taken);
                return Results.Ok();
            });
            await app.RunAsync();
            Console.WriteLine($"taken {Interlocked.Read(ref taken)}");
            return 0;
        });
        return command;
    }
}
