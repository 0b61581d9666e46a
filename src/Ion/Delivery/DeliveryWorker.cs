using Ion.Queues;
using Microsoft.Extensions.Options;

namespace Ion.Delivery;

/// <summary>
/// Takes messages off the queue and delivers them (<see cref="BatchDelivery"/>): one loop per SMTP connection
/// (<see cref="DeliveryOptions.Concurrency"/>), each waiting for a relay's circuit (<see cref="Relays"/>), receiving a
/// batch and delivering it through that relay, and the heartbeat that keeps what the loops hold hidden.
/// </summary>
public sealed class DeliveryWorker(
    IMessageQueue queue,
    BatchDelivery delivery,
    Relays relays,
    HeldMessages held,
    StoreHealth store,
    IOptions<SmtpOptions> smtpOptions,
    IOptions<DeliveryOptions> deliveryOptions,
    TimeProvider time,
    ILogger<DeliveryWorker> logger) : BackgroundService
{
    /// <summary>What a stop needs beyond the longest a slot may still be busy (a send's reply, a long poll): the outcome
    /// recorded and what the slot holds given back.</summary>
    public static readonly TimeSpan StopMargin = TimeSpan.FromSeconds(10);

    private readonly DeliveryOptions _options = deliveryOptions.Value;

    // How long a slot waits at most between tries of a store that cannot be written.
    private static readonly TimeSpan StoreLongestPause = TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.Enabled)
        {
            Log.Disabled(logger);
            return;
        }
        // A stop can take a while (a long poll ends at its wait), so the log says what it waits for and when it is done.
        var stopAsked = 0L;
        await using var stopping = stoppingToken.Register(() =>
        {
            stopAsked = time.GetTimestamp();
            Log.Stopping(logger);
        });
        var slots = Enumerable.Range(0, _options.Concurrency)
            .Select(slot => Task.Run(() => RunSlotAsync(slot, stoppingToken), CancellationToken.None));
        await Task.WhenAll([.. slots, held.RunAsync(stoppingToken)]);
        if (stopAsked != 0)
            Log.Stopped(logger, time.GetElapsedTime(stopAsked).TotalSeconds);
    }

    private async Task RunSlotAsync(int slot, CancellationToken stoppingToken)
    {
        await using var senders = new RelaySenders(smtpOptions.Value, time);
        var storePause = TimeSpan.Zero;
        while (!stoppingToken.IsCancellationRequested)
        {
            RelayPermit? permit = null;
            try
            {
                permit = await relays.WaitAsync(stoppingToken);
                if (permit.IsTrial && !relays[permit.Relay].NeedsAMessageToProbe)
                {
                    await delivery.ProbeAsync(senders, permit, stoppingToken);
                    continue;
                }
                var batch = await queue.ReceiveAsync(permit.IsTrial ? 1 : delivery.BatchSize(), stoppingToken);
                store.Succeeded();
                storePause = TimeSpan.Zero;
                // A copy another slot here still holds (its hold ran out while the store could not be written) stays
                // that slot's: taking it too would send it twice. It shows again after the timeout if that slot let go.
                batch = [.. batch.Where(m => !held.Holds(m))];
                if (batch.Count > 0)
                    await delivery.ProcessAsync(senders, batch, permit, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (StoreUnavailableException damaged) when (damaged.Fault == StoreFault.Damaged)
            {
                // Retrying cannot help, and a message sent now could not be recorded, so it would be sent again: the
                // slot stops, health says why, and the operator repairs the file (what this slot holds comes back
                // after the visibility timeout, or at once to the next process).
                store.Failed(damaged);
                Log.StoreDamaged(logger, slot, damaged.Message);
                break;
            }
            catch (StoreUnavailableException unavailable)
            {
                // A full disk, a file locked by another process, SQS or DynamoDB not answering: said once, by the store's
                // health, not once per try; tried again after a pause that grows while it lasts. What this slot still
                // holds comes back after the visibility timeout.
                store.Failed(unavailable);
                storePause = storePause == TimeSpan.Zero ? TimeSpan.FromSeconds(1) : TimeSpan.FromTicks(Math.Min(StoreLongestPause.Ticks, storePause.Ticks * 2));
                try
                {
                    await Task.Delay(storePause, time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
            catch (Exception error)
            {
                // A bug met outside any one message: what this slot still holds comes back after the visibility
                // timeout. Back off rather than spin, and keep going.
                Log.SlotFailed(logger, slot, error);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
            finally
            {
                if (permit is not null)
                    relays[permit.Relay].Abandon(permit);
            }
        }
    }
}
