using System.Security.Cryptography;

namespace Ion.Stores.Sqlite;

/// <summary>
/// This queue instance's name as a holder of messages, backed by a lock file in <c>ion.db-holders/</c> that it keeps
/// open and exclusively locked for as long as it lives. The operating system drops the lock when the process dies,
/// however it dies (kill -9 included), so any process on the machine can tell a live holder from a dead one by trying
/// to take its lock: the same thing Postfix's master does with its own lock file.
/// </summary>
/// <remarks>.NET takes an advisory lock (<c>flock</c>) for <see cref="FileShare.None"/> on Unix and a share lock on
/// Windows; both are per open file, so two instances in one process are told apart as well.</remarks>
internal sealed class HolderLock(string folder) : IDisposable
{
    private readonly Lock _lock = new();
    private FileStream? _file;
    private string? _name;

    /// <summary>This instance's holder name, taking its lock file the first time.</summary>
    public string Acquire()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_name == "", this);
            if (_name is not null)
                return _name;
            Directory.CreateDirectory(folder);
            var name = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
            _file = new FileStream(PathOf(name), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
            _name = name;
            return name;
        }
    }

    /// <summary>Whether the holder <paramref name="name"/> is gone: its lock file is missing, or can be taken. A gone
    /// holder's file is deleted while held, so the question is asked once.</summary>
    public bool IsGone(string name)
    {
        var path = PathOf(name);
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            return true;
        }
        catch (FileNotFoundException)
        {
            return true;
        }
        catch (DirectoryNotFoundException)
        {
            return true;
        }
        catch (IOException)
        {
            // Locked: its process is alive.
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            // Another user's instance: it is not ours to judge, so it counts as alive (its messages come back after
            // the visibility timeout, as on SQS).
            return false;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_file is not null && _name is not null)
            {
                try
                {
                    File.Delete(PathOf(_name));
                }
                catch (IOException)
                {
                }
                _file.Dispose();
            }
            _file = null;
            _name = "";
        }
    }

    // Names are 32 hex digits made here or read back from the queue; anything else is not a holder of ours.
    private string PathOf(string name) =>
        name.Length == 32 && name.All(char.IsAsciiHexDigitLower) ? Path.Combine(folder, name + ".lock") : throw new ArgumentException($"'{name}' is not a holder name", nameof(name));
}
