using System.Collections.Concurrent;

namespace IonBench;

/// <summary>Stamps every write into smtp-sink's dump folder as it happens (inotify, through FileSystemWatcher),
/// keeping the last one per file.</summary>
internal sealed class DumpWatcher : IDisposable
{
    private readonly FileSystemWatcher _watcher;
    private readonly ConcurrentDictionary<string, DateTimeOffset> _lastWrite = new(StringComparer.Ordinal);
    private volatile string? _error;

    public DumpWatcher(string folder)
    {
        _watcher = new FileSystemWatcher(folder)
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName,
            IncludeSubdirectories = true,
            // Room for bursts at 1,000 msg/s; an overflow loses events, and is reported rather than guessed around.
            InternalBufferSize = 64 * 1024,
        };
        // The handler runs on the watcher's own thread as each event is read, so the stamp is taken at once.
        _watcher.Changed += (_, change) => _lastWrite[change.FullPath] = Clock.Now();
        _watcher.Error += (_, error) => _error = error.GetException().Message;
        _watcher.EnableRaisingEvents = true;
    }

    /// <summary>When the file was last written, as the watcher saw it.</summary>
    public DateTimeOffset LastWrite(string path)
    {
        if (_error is { } error)
            throw new BenchFailure($"watching smtp-sink's dump folder failed: {error}");
        return _lastWrite.TryGetValue(path, out var written)
            ? written
            : throw new BenchFailure($"no write to {path} was seen (file watcher)");
    }

    public void Dispose() => _watcher.Dispose();
}
