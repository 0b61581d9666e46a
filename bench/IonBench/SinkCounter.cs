using System.Text;

namespace IonBench;

/// <summary>Reads the counters <c>smtp-sink -c</c> writes to its output: records like <c>"sess=1 quit=0 mesg=42\r"</c>,
/// one per event, appended to the file.</summary>
internal static class SinkCounter
{
    /// <summary>The last complete <c>mesg=</c> count, 0 when there is none yet.</summary>
    public static long Read(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        // Two records are enough to hold one complete one, whatever the tail holds.
        var tail = new byte[Math.Min(file.Length, 128)];
        file.Seek(-tail.Length, SeekOrigin.End);
        file.ReadExactly(tail);
        var text = Encoding.ASCII.GetString(tail);
        // The newest record may still be half written: only a count followed by its '\r' is taken.
        for (var at = text.LastIndexOf("mesg=", StringComparison.Ordinal); at >= 0; at = at == 0 ? -1 : text.LastIndexOf("mesg=", at - 1, StringComparison.Ordinal))
        {
            var digits = at + "mesg=".Length;
            var end = digits;
            while (end < text.Length && char.IsAsciiDigit(text[end]))
                end++;
            if (end > digits && end < text.Length && text[end] == '\r')
                return long.Parse(text.AsSpan(digits, end - digits), provider: null);
        }
        return 0;
    }

    /// <summary>Polls until the sink has counted <paramref name="count"/> messages and returns when it saw that.
    /// Every 5 ms: fine enough for runs of seconds, cheap enough not to compete with what is measured.</summary>
    public static async Task<DateTimeOffset> WaitForAsync(string path, long count, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Clock.Now() + timeout;
        while (true)
        {
            var seen = File.Exists(path) ? Read(path) : 0;
            var now = Clock.Now();
            if (seen >= count)
                return now;
            if (now > deadline)
                throw new BenchFailure($"smtp-sink counted {seen} of {count} messages after {timeout.TotalSeconds:F0} s");
            await Task.Delay(TimeSpan.FromMilliseconds(5), cancellationToken);
        }
    }
}
