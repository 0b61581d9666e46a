using Ion.Delivery;
using Microsoft.Extensions.Time.Testing;

namespace Ion.Tests.Delivery;

/// <summary>The circuit breaker whose probe is one real delivery (half-open), on a fake clock.</summary>
public class RelayCircuitTests
{
    private static readonly SmtpAnswer Refused = new(OutcomeKind.RelayRefusesIon, 530, "5.7.0", "5.7.0 Must issue a STARTTLS command first");
    private readonly FakeTimeProvider _time = new();
    private readonly RelayCircuit _circuit;

    public RelayCircuitTests() => _circuit = new RelayCircuit(_time, new DeliveryOptions
    {
        RelayProbeBaseDelay = TimeSpan.FromSeconds(1),
        RelayProbeMaxDelay = TimeSpan.FromSeconds(8),
    }, () => 1.0);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Closed_LetsEveryoneSend()
    {
        var permit = await _circuit.WaitAsync(Token);

        Assert.False(permit.IsTrial);
        Assert.True(_circuit.Allows(permit));
        Assert.False(_circuit.IsOpen);
    }

    [Fact]
    public async Task AFailure_Opens_OneTrialAfterThePause_SuccessOfTheTrialCloses()
    {
        var sender = await _circuit.WaitAsync(Token);
        _circuit.Failed(sender, Refused);
        Assert.True(_circuit.IsOpen);
        Assert.Same(Refused, _circuit.LastAnswer);
        Assert.False(_circuit.Allows(sender));

        var first = _circuit.WaitAsync(Token);
        var second = _circuit.WaitAsync(Token);
        _time.Advance(TimeSpan.FromMilliseconds(999));
        await Task.WhenAny(first, Task.Delay(100, Token));
        Assert.False(first.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        var trial = await Task.WhenAny(first, second).Unwrap();

        Assert.True(trial.IsTrial);
        Assert.True(_circuit.Allows(trial));
        // Only one is let through while the trial is out.
        Assert.False(first.IsCompleted && second.IsCompleted);
        _circuit.Succeeded(trial);
        Assert.False(_circuit.IsOpen);
        Assert.False((await first).IsTrial && (await second).IsTrial);
    }

    [Fact]
    public async Task AFailedTrial_KeepsItOpen_WithAPauseThatGrows_UpToTheMaximum()
    {
        _circuit.Failed(await _circuit.WaitAsync(Token), Refused);
        foreach (var seconds in new[] { 1, 2, 4, 8, 8 })
        {
            var next = _circuit.WaitAsync(Token);
            _time.Advance(TimeSpan.FromSeconds(seconds) - TimeSpan.FromMilliseconds(1));
            // The timer fires on this thread and the waiter goes on on the pool: give it a moment to show it waits.
            await Task.WhenAny(next, Task.Delay(50, Token));
            Assert.False(next.IsCompleted, $"let through before {seconds} s");
            _time.Advance(TimeSpan.FromMilliseconds(1));
            var trial = await next.WaitAsync(TimeSpan.FromSeconds(5), Token);
            Assert.True(trial.IsTrial);
            _circuit.Failed(trial, Refused);
        }

        Assert.True(_circuit.IsOpen);
    }

    [Fact]
    public async Task ASenderThatWasMidSendWhenAnotherOpenedIt_DoesNotCloseIt()
    {
        var early = await _circuit.WaitAsync(Token);
        var other = await _circuit.WaitAsync(Token);
        _circuit.Failed(other, Refused);

        _circuit.Succeeded(early);

        Assert.True(_circuit.IsOpen);
    }

    [Fact]
    public async Task AnAbandonedTrial_LetsTheNextCallerTry()
    {
        _circuit.Failed(await _circuit.WaitAsync(Token), Refused);
        _time.Advance(TimeSpan.FromSeconds(1));
        var trial = await _circuit.WaitAsync(Token);

        _circuit.Abandon(trial);

        Assert.True((await _circuit.WaitAsync(Token)).IsTrial);
    }
}
