using System.ComponentModel.DataAnnotations;

namespace Ion.Stores.Sqlite;

/// <summary>How long a received message stays hidden, and how long a receive waits for one.</summary>
public sealed class SqliteQueueOptions
{
    /// <summary>How long a received message stays hidden before another receive may take it again:
    /// longer than one delivery attempt, short enough that a crashed worker's messages come back soon.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "12:00:00")]
    public TimeSpan VisibilityTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a receive waits for a message when none is visible, like SQS long polling. Messages
    /// this instance enqueues end the wait at once; those of other processes are found at the next look.
    /// Zero returns at once.</summary>
    public TimeSpan ReceiveWaitTime { get; init; } = TimeSpan.Zero;
}
