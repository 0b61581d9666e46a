using System.ComponentModel.DataAnnotations;

namespace Ion.Queues;

/// <summary>Where the one-machine queue lives and how long a received message stays hidden.</summary>
public sealed class SqliteQueueOptions
{
    /// <summary>The SQLite file; its folder is created on first use. Several processes may share it.</summary>
    [Required]
    public required string DatabasePath { get; init; }

    /// <summary>How long a received message stays hidden before another receive may take it again:
    /// longer than one delivery attempt, short enough that a crashed worker's messages come back soon.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "12:00:00")]
    public TimeSpan VisibilityTimeout { get; init; } = TimeSpan.FromMinutes(5);
}
