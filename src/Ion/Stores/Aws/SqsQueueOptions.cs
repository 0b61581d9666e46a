using System.ComponentModel.DataAnnotations;

namespace Ion.Stores.Aws;

/// <summary>How long a received message stays hidden, and how long a receive waits for one (SQS counts both in
/// whole seconds; a fraction is rounded up).</summary>
public sealed class SqsQueueOptions
{
    /// <summary>How long a received message stays hidden before another receive may take it again:
    /// longer than one delivery attempt, short enough that a crashed worker's messages come back soon.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "12:00:00")]
    public TimeSpan VisibilityTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>SQS long polling: how long a receive waits for a message when none is visible. The most SQS allows
    /// (20 s) costs the fewest empty receives; zero asks a sample of SQS's servers only and may miss messages.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:20")]
    public TimeSpan ReceiveWaitTime { get; init; } = TimeSpan.FromSeconds(20);
}
