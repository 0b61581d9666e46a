using Microsoft.Playwright;

namespace Ion.Tests.Fixtures;

/// <summary>
/// Debian's Chromium (<c>/usr/bin/chromium</c>, installed by test.sh), driven by Playwright's .NET package, whose own
/// driver is copied to the build output: nothing is downloaded (no <c>playwright install</c>). One browser per test
/// class; each test opens a context of its own (its own session storage), at a fixed size, zone and language.
/// </summary>
public sealed class Chromium : IAsyncLifetime
{
    public const string Executable = "/usr/bin/chromium";

    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        if (!File.Exists(Executable))
            throw new InvalidOperationException($"{Executable} is missing: run ./test.sh, which installs the Debian package chromium for the browser tests");
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Executable,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        // A dashboard refreshes every few seconds and ion delivers in the background: wait for what a person would.
        Assertions.SetDefaultExpectTimeout(20_000);
    }

    /// <summary>A fresh browser session on <paramref name="url"/>; uncaught script errors land in <paramref name="errors"/>.</summary>
    public async Task<(IBrowserContext Context, IPage Page)> OpenAsync(Uri url, List<string> errors)
    {
        var context = await Browser.NewContextAsync(new()
        {
            ViewportSize = new() { Width = 1280, Height = 900 },
            TimezoneId = "UTC",
            Locale = "en-GB",
        });
        var page = await context.NewPageAsync();
        page.PageError += (_, error) =>
        {
            lock (errors)
                errors.Add(error);
        };
        await page.GotoAsync(url.ToString());
        return (context, page);
    }

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null)
            await Browser.DisposeAsync();
        _playwright?.Dispose();
    }
}
