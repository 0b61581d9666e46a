using System.CommandLine;
using System.Globalization;

namespace IonBench;

/// <summary><c>ionbench latency</c>: offers messages at a steady rate and measures publish → smtp-sink's 250 for each.
/// </summary>
/// <remarks>
/// Open loop: the k-th message goes out at t0 + k/rate whether or not earlier ones were answered, so a slow ion
/// shows up as latency instead of silently lowering the rate (a closed loop would hide it). Arrival is when
/// smtp-sink wrote the message to its dump file (<c>-d</c>): it creates the file at MAIL FROM and writes the whole
/// message in one write just before it answers 250, so the last write is the 250. A file watcher (inotify) stamps
/// that write on the same wall clock as the send times. The file's modification time would be simpler, but the
/// kernel stamps files with its coarse clock (one tick, 4 ms at HZ=250), which made a 3 ms latency read as −2 ms.
/// The first <c>--warmup-seconds</c> of messages are sent and checked but not counted: they pay for ion's JIT and
/// the first connections.
/// </remarks>
internal static class LatencyCommand
{
    public static Command Create()
    {
        Option<string> url = new("--url") { Description = "ion's base URL", Required = true };
        Option<double> rate = new("--rate") { Description = "messages per second", Required = true };
        Option<double> seconds = new("--seconds") { Description = "how long to offer the rate (after the warm-up)", Required = true };
        Option<double> warmup = new("--warmup-seconds") { DefaultValueFactory = _ => 1 };
        Option<string> dump = new("--dump") { Description = "the folder smtp-sink -d writes one file per message into", Required = true };
        Option<string> prefix = new("--id-prefix") { DefaultValueFactory = _ => "lat" };
        Option<int> connections = new("--max-connections") { DefaultValueFactory = _ => 256 };
        Option<int> timeout = new("--timeout-seconds") { Description = "how long to wait for every message to arrive", DefaultValueFactory = _ => 300 };
        Option<string?> samples = new("--samples") { Description = "also write every message's times to this CSV file (for a closer look)" };
        Command command = new("latency", "Offer a steady rate over HTTP; print p50, p99, max of publish → arrival in smtp-sink (ms)")
        {
            url, rate, seconds, warmup, dump, prefix, connections, timeout, samples,
        };
        command.SetAction((parse, cancellationToken) => Run.Async(async () =>
        {
            var perSecond = parse.GetValue(rate);
            if (perSecond <= 0)
                throw new BenchFailure("--rate must be positive");
            var warmupCount = (int)Math.Round(perSecond * parse.GetValue(warmup));
            var total = warmupCount + (int)Math.Round(perSecond * parse.GetValue(seconds));
            var endpoint = new Uri(new Uri(parse.GetValue(url)!), "/v1/messages");
            var idPrefix = parse.GetValue(prefix)!;
            using var client = BenchMessage.CreateClient(parse.GetValue(connections));

            var sentAt = new DateTimeOffset[total];
            var acceptedAt = new DateTimeOffset[total];
            async Task PublishAsync(int k)
            {
                var id = BenchMessage.Id(idPrefix, k + 1);
                using var content = BenchMessage.Content(id);
                sentAt[k] = Clock.Now();
                using var response = await client.PostAsync(endpoint, content, cancellationToken);
                acceptedAt[k] = Clock.Now();
                await BenchMessage.EnsureAcceptedAsync(response, id, cancellationToken);
            }

            var folder = parse.GetValue(dump)!;
            using var watcher = new DumpWatcher(folder);

            var publishes = new Task[total];
            var lateness = TimeSpan.Zero;
            var start = TimeProvider.System.GetTimestamp();
            TimeSpan Due(int k) => TimeSpan.FromSeconds(k / perSecond);
            for (var k = 0; k < total;)
            {
                var elapsed = TimeProvider.System.GetElapsedTime(start);
                for (; k < total && Due(k) <= elapsed; k++)
                {
                    lateness = TimeSpan.FromTicks(Math.Max(lateness.Ticks, (elapsed - Due(k)).Ticks));
                    publishes[k] = PublishAsync(k);
                }
                if (k < total)
                {
                    // Task.Delay sleeps whole milliseconds: a shorter wait would spin and take a core from ion.
                    var wait = Due(k) - TimeProvider.System.GetElapsedTime(start);
                    await Task.Delay(wait < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : wait, cancellationToken);
                }
            }
            await Task.WhenAll(publishes);

            await WaitForFilesAsync(folder, total, TimeSpan.FromSeconds(parse.GetValue(timeout)), cancellationToken);
            var arrivals = ReadArrivals(folder, watcher, out var duplicates, out var strangers);
            if (duplicates > 0 || strangers > 0)
                throw new BenchFailure($"smtp-sink got {duplicates} duplicate(s) and {strangers} message(s) that were not sent by this run");

            List<double> latencies = [];
            List<double> accepts = [];
            var lastArrival = DateTimeOffset.MinValue;
            var missing = 0;
            for (var k = warmupCount; k < total; k++)
            {
                accepts.Add((acceptedAt[k] - sentAt[k]).TotalMilliseconds);
                if (arrivals.TryGetValue(BenchMessage.Id(idPrefix, k + 1), out var arrived))
                {
                    latencies.Add((arrived.Written - sentAt[k]).TotalMilliseconds);
                    lastArrival = arrived.Written > lastArrival ? arrived.Written : lastArrival;
                }
                else
                {
                    missing++;
                }
            }
            if (missing > 0)
                throw new BenchFailure($"{missing} of {total - warmupCount} measured messages never reached smtp-sink");
            if (parse.GetValue(samples) is { } csv)
                await WriteSamplesAsync(csv, idPrefix, sentAt, acceptedAt, arrivals, warmupCount);

            // What ion delivered while the rate was offered: below the offered rate, the backlog (and so the latency)
            // grows for as long as the run lasts, and the latency figures say more about the run than about ion.
            var delivered = latencies.Count / (lastArrival - sentAt[warmupCount]).TotalSeconds;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"sent={total} measured={latencies.Count} arrived={arrivals.Count} delivered_per_s={delivered:F0} " +
                $"p50_ms={Percentile(latencies, 0.50):F2} p99_ms={Percentile(latencies, 0.99):F2} max_ms={latencies.Max():F2} " +
                $"accept_p50_ms={Percentile(accepts, 0.50):F2} accept_p99_ms={Percentile(accepts, 0.99):F2} accept_max_ms={accepts.Max():F2} " +
                $"send_lateness_max_ms={lateness.TotalMilliseconds:F2}"));
        }));
        return command;
    }

    private static async Task WaitForFilesAsync(string folder, int count, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Clock.Now() + timeout;
        int seen;
        while ((seen = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Count()) < count)
        {
            if (Clock.Now() > deadline)
                throw new BenchFailure($"smtp-sink wrote {seen} of {count} messages after {timeout.TotalSeconds:F0} s");
            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
        }
        // The last file may still be being written: its time would be too early, or it lacks the subject yet.
        await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken);
    }

    /// <summary>Message id → when its file was last written. Each file is smtp-sink's headers followed by the
    /// message; the message's Subject header carries the id (<see cref="BenchMessage.Subject"/>).</summary>
    private static Dictionary<string, Arrival> ReadArrivals(string folder, DumpWatcher watcher, out int duplicates, out int strangers)
    {
        Dictionary<string, Arrival> arrivals = [];
        duplicates = 0;
        strangers = 0;
        const string SubjectHeader = "Subject: ";
        var subjectStart = SubjectHeader + BenchMessage.Subject("");
        foreach (var path in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            var arrived = new Arrival(watcher.LastWrite(path), new DateTimeOffset(File.GetLastWriteTimeUtc(path)));
            string? id = null;
            foreach (var line in File.ReadLines(path))
            {
                if (line.Length == 0)
                    break;
                if (line.StartsWith(subjectStart, StringComparison.Ordinal))
                {
                    id = line[subjectStart.Length..].Trim();
                    break;
                }
            }
            if (id is null)
                strangers++;
            else if (!arrivals.TryAdd(id, arrived))
                duplicates++;
        }
        return arrivals;
    }

    private static async Task WriteSamplesAsync(
        string path, string idPrefix, DateTimeOffset[] sentAt, DateTimeOffset[] acceptedAt, Dictionary<string, Arrival> arrivals, int warmupCount)
    {
        await using var writer = new StreamWriter(path);
        await writer.WriteLineAsync("number,warmup,sent_unix_ns,accept_ms,arrival_ms,arrival_mtime_ms");
        for (var k = 0; k < sentAt.Length; k++)
        {
            var arrived = arrivals[BenchMessage.Id(idPrefix, k + 1)];
            await writer.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"{k + 1},{(k < warmupCount ? 1 : 0)},{Clock.UnixNanoseconds(sentAt[k])},{(acceptedAt[k] - sentAt[k]).TotalMilliseconds:F3}," +
                $"{(arrived.Written - sentAt[k]).TotalMilliseconds:F3},{(arrived.Modified - sentAt[k]).TotalMilliseconds:F3}"));
        }
    }

    /// <summary>When the watcher saw the message's last write, and the file's own (coarse) modification time.</summary>
    private readonly record struct Arrival(DateTimeOffset Written, DateTimeOffset Modified);

    /// <summary>Nearest rank: the smallest value with at least <paramref name="fraction"/> of the values at or below it.</summary>
    private static double Percentile(List<double> values, double fraction)
    {
        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(fraction * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}
