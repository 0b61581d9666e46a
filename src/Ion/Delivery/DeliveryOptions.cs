using Microsoft.Extensions.Options;

namespace Ion.Delivery;

/// <summary>The <c>Ion:Delivery</c> section: how hard and how fast ion sends.</summary>
public sealed class DeliveryOptions
{
    public const string Section = "Ion:Delivery";

    /// <summary>False runs ion as an intake only: it accepts and queues, and delivers nothing (maintenance, or an
    /// ingest-only node in front of a shared queue).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Parallel SMTP connections (the original Lambda had one).</summary>
    public int Concurrency { get; set; } = 1;
    /// <summary>Attempts per message before a transient failure becomes a dead letter.</summary>
    public int MaxAttempts { get; set; } = 5;
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(30);
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromHours(1);
    /// <summary>How long a received message stays hidden from other workers; after a crash it comes back after this.</summary>
    public TimeSpan VisibilityTimeout { get; set; } = TimeSpan.FromMinutes(5);
    /// <summary>Messages per second to the relay, for all connections together; 0 = unlimited.</summary>
    public double RatePerSecond { get; set; }
    /// <summary>Messages taken from the queue at once by each connection.</summary>
    public int BatchSize { get; set; } = 10;
    /// <summary>How often an idle worker looks for messages published by another process (HTTP publishes wake it at once).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(500);
    /// <summary>First and longest wait between probes of a relay that is down.</summary>
    public TimeSpan RelayProbeBaseDelay { get; set; } = TimeSpan.FromSeconds(1);
    public TimeSpan RelayProbeMaxDelay { get; set; } = TimeSpan.FromMinutes(1);
    /// <summary>How long a message may wait in all, counting pauses for a relay that is down or throttles (which
    /// spend no attempts): then it is a dead letter. Postfix's <c>maximal_queue_lifetime</c>, and its default.</summary>
    public TimeSpan MaxQueueTime { get; set; } = TimeSpan.FromDays(5);
    /// <summary>The most dead letters a redrive moves back per second, so that redriving a large backlog does not
    /// swamp the queue or the relay at once.</summary>
    public double RedrivePerSecond { get; set; } = 500;
    /// <summary>How long the delivery log keeps messages and attempts.</summary>
    public TimeSpan LogRetention { get; set; } = TimeSpan.FromDays(30);
    /// <summary>Full recipient addresses in the log's events; otherwise only their domains (addresses are personal
    /// data).</summary>
    public bool LogRecipientAddresses { get; set; }
}

internal sealed class DeliveryOptionsValidator : IValidateOptions<DeliveryOptions>
{
    public ValidateOptionsResult Validate(string? name, DeliveryOptions o)
    {
        List<string> errors = [];
        if (o.Concurrency is < 1 or > 64)
            errors.Add($"Ion:Delivery:Concurrency must be between 1 and 64 (is {o.Concurrency})");
        if (o.MaxAttempts is < 1 or > 100)
            errors.Add($"Ion:Delivery:MaxAttempts must be between 1 and 100 (is {o.MaxAttempts})");
        if (o.BatchSize is < 1 or > 100)
            errors.Add($"Ion:Delivery:BatchSize must be between 1 and 100 (is {o.BatchSize})");
        if (double.IsNaN(o.RatePerSecond) || (o.RatePerSecond != 0 && o.RatePerSecond is < SendRate.MinPerSecond or > SendRate.MaxPerSecond))
            errors.Add($"Ion:Delivery:RatePerSecond must be 0 (unlimited) or between {SendRate.MinPerSecond} and {SendRate.MaxPerSecond} (is {o.RatePerSecond})");
        Positive(errors, "RetryBaseDelay", o.RetryBaseDelay);
        Positive(errors, "RetryMaxDelay", o.RetryMaxDelay);
        Positive(errors, "VisibilityTimeout", o.VisibilityTimeout);
        Positive(errors, "PollInterval", o.PollInterval);
        Positive(errors, "RelayProbeBaseDelay", o.RelayProbeBaseDelay);
        Positive(errors, "RelayProbeMaxDelay", o.RelayProbeMaxDelay);
        Positive(errors, "LogRetention", o.LogRetention);
        Positive(errors, "MaxQueueTime", o.MaxQueueTime);
        if (double.IsNaN(o.RedrivePerSecond) || o.RedrivePerSecond is < 1 or > 100_000)
            errors.Add($"Ion:Delivery:RedrivePerSecond must be between 1 and 100000 (is {o.RedrivePerSecond})");
        if (o.RetryMaxDelay < o.RetryBaseDelay)
            errors.Add("Ion:Delivery:RetryMaxDelay must not be shorter than Ion:Delivery:RetryBaseDelay");
        if (o.RelayProbeMaxDelay < o.RelayProbeBaseDelay)
            errors.Add("Ion:Delivery:RelayProbeMaxDelay must not be shorter than Ion:Delivery:RelayProbeBaseDelay");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void Positive(List<string> errors, string key, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
            errors.Add($"Ion:Delivery:{key} must be a positive duration like 00:00:30 (is {value})");
    }
}
