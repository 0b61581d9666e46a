using System.Diagnostics;
using MimeKit;

namespace Ion.Tests.Fixtures;

/// <summary>
/// Postfix's smtp-sink on 127.0.0.1, writing every message it accepts to a folder. Its flags inject failures:
/// <c>-r RCPT</c> answers 450 to RCPT, <c>-B "550 5.1.1 No such user" -f RCPT</c> a permanent 550, <c>-q .</c>
/// drops the connection after the data (see <c>man smtp-sink</c>). Installed by test.sh (Debian package postfix).
/// </summary>
public sealed class SmtpSink : IAsyncDisposable
{
    private const string Binary = "/usr/sbin/smtp-sink";
    private Process? _process;

    private SmtpSink(int port, string folder)
    {
        Port = port;
        Folder = folder;
    }

    public int Port { get; }

    /// <summary>One file per accepted message: smtp-sink's own headers (X-Rcpt-Args …), then the message as received.</summary>
    public string Folder { get; }

    public static async Task<SmtpSink> StartAsync(params string[] flags) => await StartAsync(Ports.Free(), flags);

    public static async Task<SmtpSink> StartAsync(int port, params string[] flags)
    {
        var folder = Directory.CreateTempSubdirectory("ion-sink-").FullName;
        // smtp-sink drops root for 'nobody', who must be able to write the dumps.
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(folder, (UnixFileMode)0b111_111_111);
        var sink = new SmtpSink(port, folder);
        await sink.RunAsync(flags);
        return sink;
    }

    /// <summary>Stops the sink (connections are refused from now on).</summary>
    public async Task StopAsync()
    {
        if (_process is null)
            return;
        try
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
        _process.Dispose();
        _process = null;
        // The kernel may take a moment to let the port go.
        var deadline = Environment.TickCount64 + 5000;
        while (await Ports.IsListeningAsync(Port) && Environment.TickCount64 < deadline)
            await Task.Delay(25);
    }

    /// <summary>Starts again on the same port, with other flags (e.g. none: accept everything now).</summary>
    public async Task RestartAsync(params string[] flags)
    {
        await StopAsync();
        await RunAsync(flags);
    }

    public string[] Files() => Directory.GetFiles(Folder, "msg.*", SearchOption.AllDirectories);

    public int Count => Files().Length;

    /// <summary>Waits until at least <paramref name="count"/> messages arrived, then parses them all.</summary>
    public async Task<IReadOnlyList<MimeMessage>> WaitForMessagesAsync(int count, TimeSpan timeout)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (Count < count)
        {
            if (Environment.TickCount64 > deadline)
                throw new TimeoutException($"smtp-sink received {Count} of {count} messages within {timeout}");
            await Task.Delay(50);
        }
        return await ReadMessagesAsync();
    }

    public async Task<IReadOnlyList<MimeMessage>> ReadMessagesAsync()
    {
        List<MimeMessage> messages = [];
        foreach (var file in Files())
        {
            // A dump may still be being written: retry briefly.
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    messages.Add(await MimeMessage.LoadAsync(file));
                    break;
                }
                catch (FormatException) when (attempt < 20)
                {
                    await Task.Delay(50);
                }
            }
        }
        return messages;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task RunAsync(string[] flags)
    {
        if (!File.Exists(Binary))
            throw new InvalidOperationException($"{Binary} is missing: run ./test.sh, which installs the Debian package postfix");
        if (await Ports.IsListeningAsync(Port))
            throw new InvalidOperationException($"port {Port} is already in use; smtp-sink would share it silently");
        var info = new ProcessStartInfo(Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (Environment.UserName == "root")
        {
            info.ArgumentList.Add("-u");
            info.ArgumentList.Add("nobody");
        }
        info.ArgumentList.Add("-d");
        info.ArgumentList.Add(Path.Combine(Folder, "%H/msg."));
        foreach (var flag in flags)
            info.ArgumentList.Add(flag);
        info.ArgumentList.Add($"127.0.0.1:{Port}");
        info.ArgumentList.Add("64");
        _process = Process.Start(info) ?? throw new InvalidOperationException("smtp-sink did not start");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        await Ports.WaitUntilListeningAsync(Port, TimeSpan.FromSeconds(10));
    }
}
