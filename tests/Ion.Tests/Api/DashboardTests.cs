using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Ion.Log;
using Ion.Stores.Sqlite;
using Ion.Tests.Fixtures;
using Microsoft.Extensions.Time.Testing;
using Microsoft.Playwright;

namespace Ion.Tests.Api;

/// <summary>
/// The dashboard at <c>/</c> in a real browser (Debian's Chromium through Playwright) against a real ion on loopback
/// delivering to a real SMTP server: Postfix's smtp-sink, or a scripted one where recipients must be told apart.
/// </summary>
public sealed class DashboardTests(Chromium chromium) : IClassFixture<Chromium>
{
    private const string Secret = "dashboard-token-0123456789";

    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private readonly List<string> _scriptErrors = [];

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static object Message(string id, string recipient, string subject = "Hello") =>
        new { action = "send", id, recipient, subject, body_text = "from the dashboard tests" };

    [Fact]
    public async Task ADeliveredMessage_AndADeadLetterWithItsReason_AreShown_AndRedriveDeliversIt()
    {
        await using var sink = await SmtpSink.StartAsync();
        // The relay refuses with "5.1.1 no such user" and the test redrives: the mailbox counts as fixed, not suppressed.
        await using var ion = await IonServer.StartAsync(sink.Port, "--Ion:Suppression:Enabled=false");
        await ion.PublishAsync(Message("welcome-1", "alice@example.com"));
        await ion.WaitForStatusAsync("welcome-1", r => r.State == MessageState.Sent, Wait);
        await sink.RestartAsync("-B", "550 5.1.1 No such user", "-f", "RCPT");
        await ion.PublishAsync(Message("order-2", "bob@example.org"));
        await ion.WaitForStatusAsync("order-2", r => r.State == MessageState.Dead, Wait);
        await sink.RestartAsync();

        var (context, page) = await chromium.OpenAsync(ion.Client.BaseAddress!, _scriptErrors);
        await using var _ = context;

        await Assertions.Expect(page.Locator("#count-dead")).ToHaveTextAsync("1");
        await Assertions.Expect(page.Locator("#count-sent")).ToHaveTextAsync("1");
        await Assertions.Expect(page.Locator("#relay")).ToHaveTextAsync("Relay up");
        // Without Ion:Smtp:Fallback there is none to show.
        await Assertions.Expect(page.Locator("#fallback")).ToBeHiddenAsync();
        await Assertions.Expect(RecentRow(page, "welcome-1")).ToContainTextAsync("sent");
        await Assertions.Expect(RecentRow(page, "welcome-1")).ToContainTextAsync("alice@example.com");
        await Assertions.Expect(RecentRow(page, "order-2")).ToContainTextAsync("dead");
        var dead = DeadRow(page, "order-2");
        await Assertions.Expect(dead).ToContainTextAsync("550 5.1.1 No such user");
        await Assertions.Expect(dead).ToContainTextAsync("permanent");
        await Assertions.Expect(dead).ToContainTextAsync("bob@example.org");
        // The chart has the minute with one sent and one failed.
        // (More failed than the one refusal when ion's connection to the sink it restarted breaks on its next try.)
        await Assertions.Expect(page.Locator("#chart-title")).ToHaveTextAsync(new Regex(@"^Last hour: 1 sent, [1-9]\d* failed$"));

        // The message view: its attempt, with the relay's answer, and the recipient's outcome.
        await dead.GetByRole(AriaRole.Button, new() { Name = "order-2", Exact = true }).ClickAsync();
        var view = page.Locator("#message");
        await Assertions.Expect(view).ToBeVisibleAsync();
        await Assertions.Expect(view.GetByRole(AriaRole.Table, new() { Name = "Attempts" })).ToContainTextAsync("rejected");
        await Assertions.Expect(view.GetByRole(AriaRole.Table, new() { Name = "Recipients" })).ToContainTextAsync("failed");
        await Assertions.Expect(view.GetByRole(AriaRole.Table, new() { Name = "Recipients" })).ToContainTextAsync("550");
        await view.GetByRole(AriaRole.Button, new() { Name = "Close" }).ClickAsync();
        await Assertions.Expect(view).ToBeHiddenAsync();

        await dead.GetByRole(AriaRole.Button, new() { Name = "Redrive order-2" }).ClickAsync();

        await Assertions.Expect(page.Locator("#dead-status")).ToContainTextAsync("Redriven 1 of 1: order-2");
        await Assertions.Expect(page.Locator("#dead-summary")).ToHaveTextAsync("No dead letters.");
        await Assertions.Expect(RecentRow(page, "order-2")).ToContainTextAsync("sent");
        await Assertions.Expect(page.Locator("#count-dead")).ToHaveTextAsync("0");
        await Assertions.Expect(page.Locator("#count-sent")).ToHaveTextAsync("2");
        // welcome-1 before, order-2 now (the sink keeps its folder across restarts).
        var delivered = await sink.WaitForMessagesAsync(2, Wait);
        Assert.Equal(["alice@example.com", "bob@example.org"], delivered.Select(m => m.To.Mailboxes.Single().Address).Order());
        await dead.Page.Locator("#recent").GetByRole(AriaRole.Button, new() { Name = "order-2", Exact = true }).ClickAsync();
        await Assertions.Expect(view.GetByRole(AriaRole.Table, new() { Name = "Attempts" })).ToContainTextAsync("sent");
        AssertNoScriptErrors();
    }

    [Fact]
    public async Task DeadLetters_AreFiltered_ByFailureClass_RecipientDomain_AndTime_AndAllShownAreRedriven()
    {
        var refusing = true;
        await using var relay = await ScriptedSmtpServer.StartAsync(context =>
            context.Stage != ScriptedStage.RcptTo || !Volatile.Read(ref refusing) ? null
            : context.Argument.EndsWith("@gone.example", StringComparison.OrdinalIgnoreCase) ? new ScriptedReply(550, "5.1.1 No such user")
            : context.Argument.EndsWith("@full.example", StringComparison.OrdinalIgnoreCase) ? new ScriptedReply(452, "4.2.2 Mailbox full")
            : null);
        // The relay refuses with "5.1.1 no such user" and the test redrives: the mailbox counts as fixed, not suppressed.
        await using var ion = await IonServer.StartAsync(relay.Port, "--Ion:Delivery:MaxAttempts=2", "--Ion:Suppression:Enabled=false");
        await ion.PublishAsync(Message("gone-early", "a@gone.example"));
        await ion.WaitForStatusAsync("gone-early", r => r.State == MessageState.Dead, Wait);
        // The time filters take whole seconds: the first letter died before this second, the others after it.
        var now = TimeProvider.System.GetUtcNow();
        var between = now.AddTicks(TimeSpan.TicksPerSecond - now.UtcTicks % TimeSpan.TicksPerSecond);
        await Task.Delay(between - now + TimeSpan.FromMilliseconds(300), Token);
        await ion.PublishAsync(Message("full-late", "c@full.example"));
        await ion.WaitForStatusAsync("full-late", r => r.State == MessageState.Dead, Wait);
        await ion.PublishAsync(Message("gone-late", "b@gone.example"));
        await ion.WaitForStatusAsync("gone-late", r => r.State == MessageState.Dead, Wait);

        var (context, page) = await chromium.OpenAsync(ion.Client.BaseAddress!, _scriptErrors);
        await using var _ = context;
        var ids = page.Locator("#dead tbody tr td:nth-child(2)");
        await Assertions.Expect(ids).ToHaveTextAsync(["gone-early", "full-late", "gone-late"]);
        await Assertions.Expect(DeadRow(page, "full-late")).ToContainTextAsync("transient");
        await Assertions.Expect(DeadRow(page, "full-late")).ToContainTextAsync("452 4.2.2 Mailbox full");

        await page.SelectOptionAsync("#filter-class", "transient");
        await page.ClickAsync("text=Apply filters");
        await Assertions.Expect(ids).ToHaveTextAsync(["full-late"]);

        await page.SelectOptionAsync("#filter-class", "");
        await page.FillAsync("#filter-domain", "gone.example");
        await page.ClickAsync("text=Apply filters");
        await Assertions.Expect(ids).ToHaveTextAsync(["gone-early", "gone-late"]);

        var second = between.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture);
        await page.FillAsync("#filter-domain", "");
        await page.FillAsync("#filter-since", second);
        await page.ClickAsync("text=Apply filters");
        await Assertions.Expect(ids).ToHaveTextAsync(["full-late", "gone-late"]);

        await page.FillAsync("#filter-since", "");
        await page.FillAsync("#filter-before", second);
        await page.ClickAsync("text=Apply filters");
        await Assertions.Expect(ids).ToHaveTextAsync(["gone-early"]);

        await page.FillAsync("#filter-before", "");
        await page.FillAsync("#filter-since", second);
        await page.SelectOptionAsync("#filter-class", "permanent");
        await page.ClickAsync("text=Apply filters");
        await Assertions.Expect(ids).ToHaveTextAsync(["gone-late"]);

        await page.ClickAsync("text=Clear");
        await Assertions.Expect(ids).ToHaveTextAsync(["gone-early", "full-late", "gone-late"]);

        // "All shown" is what the filter shows, and nothing else.
        await page.FillAsync("#filter-domain", "gone.example");
        await page.ClickAsync("text=Apply filters");
        await Assertions.Expect(ids).ToHaveTextAsync(["gone-early", "gone-late"]);
        Volatile.Write(ref refusing, false);
        await page.GetByRole(AriaRole.Button, new() { Name = "Redrive all shown (2)" }).ClickAsync();

        await Assertions.Expect(page.Locator("#dead-status")).ToContainTextAsync("Redriven 2 of 2");
        await ion.WaitForStatusAsync("gone-early", r => r.State == MessageState.Sent, Wait);
        await ion.WaitForStatusAsync("gone-late", r => r.State == MessageState.Sent, Wait);
        Assert.Equal(MessageState.Dead, (await ion.StatusAsync("full-late"))!.State);
        await Assertions.Expect(page.Locator("#dead-summary")).ToHaveTextAsync("No dead letters match these filters.");
        await page.ClickAsync("text=Clear");
        await Assertions.Expect(ids).ToHaveTextAsync(["full-late"]);
        AssertNoScriptErrors();
    }

    [Fact]
    public async Task KeyboardOnly_FiltersSelectsAndRedrives_WithFocusAlwaysVisible()
    {
        await using var sink = await SmtpSink.StartAsync("-B", "550 5.1.1 No such user", "-f", "RCPT");
        // The relay refuses with "5.1.1 no such user" and the test redrives: the mailbox counts as fixed, not suppressed.
        await using var ion = await IonServer.StartAsync(sink.Port, "--Ion:Suppression:Enabled=false");
        await ion.PublishAsync(Message("kb-keep", "x@keep.example"));
        await ion.PublishAsync(Message("kb-go", "y@go.example"));
        await ion.WaitForStatusAsync("kb-keep", r => r.State == MessageState.Dead, Wait);
        await ion.WaitForStatusAsync("kb-go", r => r.State == MessageState.Dead, Wait);
        await sink.RestartAsync();

        var (context, page) = await chromium.OpenAsync(ion.Client.BaseAddress!, _scriptErrors);
        await using var _ = context;
        var ids = page.Locator("#dead tbody tr td:nth-child(2)");
        await Assertions.Expect(ids).ToHaveCountAsync(2);

        // Tab to the domain filter, type it, Enter applies.
        await TabToAsync(page, "el => el.id === 'filter-domain'", "the recipient domain filter");
        await page.Keyboard.TypeAsync("go.example");
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(ids).ToHaveTextAsync(["kb-go"]);

        // Enter on a message id opens its view; Tab reaches Close, Enter closes it.
        await TabToAsync(page, "el => el.dataset.key === 'dead-open:kb-go'", "kb-go's message view button");
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.Locator("#message")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("550 5.1.1 No such user");
        await TabToAsync(page, "el => el.id === 'message-close'", "the message view's Close button");
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.Locator("#message")).ToBeHiddenAsync();

        // Space selects the row; Tab reaches "Redrive selected"; Enter redrives.
        await TabToAsync(page, "el => el.getAttribute('aria-label') === 'Select kb-go'", "kb-go's checkbox");
        await page.Keyboard.PressAsync("Space");
        await Assertions.Expect(page.GetByRole(AriaRole.Checkbox, new() { Name = "Select kb-go" })).ToBeCheckedAsync();
        await TabToAsync(page, "el => el.id === 'redrive-selected'", "Redrive selected");
        await Assertions.Expect(page.Locator("#redrive-selected")).ToHaveTextAsync("Redrive selected (1)");
        await page.Keyboard.PressAsync("Enter");

        await Assertions.Expect(page.Locator("#dead-status")).ToContainTextAsync("Redriven 1 of 1: kb-go");
        await ion.WaitForStatusAsync("kb-go", r => r.State == MessageState.Sent, Wait);
        Assert.Equal("y@go.example", Assert.Single(await sink.WaitForMessagesAsync(1, Wait)).To.Mailboxes.Single().Address);
        Assert.Equal(MessageState.Dead, (await ion.StatusAsync("kb-keep"))!.State);
        // The keyboard is not lost with the row it redrove.
        Assert.NotEqual("BODY", await page.EvaluateAsync<string>("() => document.activeElement.tagName"));
        AssertNoScriptErrors();
    }

    [Fact]
    public async Task WithAToken_ThePageLoadsWithoutIt_AsksForItOnce_AndTheSessionKeepsIt()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(sink.Port, $"--Ion:Api:Token={Secret}");
        await ion.Client.SendAsync(Authorized(HttpMethod.Post, "/v1/messages", Message("t-1", "a@example.com")), Token);
        await IonServer.WaitUntilAsync(async () =>
        {
            using var response = await ion.Client.SendAsync(Authorized(HttpMethod.Get, "/v1/messages/t-1"), Token);
            return response.IsSuccessStatusCode && (await response.Content.ReadAsStringAsync(Token)).Contains("\"sent\"", StringComparison.Ordinal);
        }, "t-1 sent");

        // Over plain HTTP: the page and its assets need no token; the API still does.
        using (var pageResponse = await ion.Client.GetAsync("/", Token))
        {
            Assert.Equal(HttpStatusCode.OK, pageResponse.StatusCode);
            Assert.Equal("text/html", pageResponse.Content.Headers.ContentType?.MediaType);
            Assert.Contains("script-src 'self'", pageResponse.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        }
        foreach (var asset in new[] { "/dashboard/dashboard.js", "/dashboard/dashboard.css" })
            Assert.Equal(HttpStatusCode.OK, (await ion.Client.GetAsync(asset, Token)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await ion.Client.GetAsync("/dashboard/secrets.json", Token)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ion.Client.GetAsync("/v1/activity", Token)).StatusCode);

        var (context, page) = await chromium.OpenAsync(ion.Client.BaseAddress!, _scriptErrors);
        await using var _ = context;
        var prompt = page.Locator("#token-dialog");
        await Assertions.Expect(prompt).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#count-sent")).ToHaveTextAsync("–");

        await page.FillAsync("#token-input", "not-the-token-at-all");
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(prompt).ToContainTextAsync("did not accept that token");
        await Assertions.Expect(prompt).ToBeVisibleAsync();

        await page.FillAsync("#token-input", Secret);
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(prompt).ToBeHiddenAsync();
        await Assertions.Expect(page.Locator("#count-sent")).ToHaveTextAsync("1");
        await Assertions.Expect(RecentRow(page, "t-1")).ToContainTextAsync("sent");
        Assert.Equal(Secret, await page.EvaluateAsync<string>("() => sessionStorage.getItem('ion.api.token')"));

        // The same session: the page comes back without asking, and keeps working through refreshes.
        await page.ReloadAsync();
        await Assertions.Expect(page.Locator("#count-sent")).ToHaveTextAsync("1");
        await Assertions.Expect(page.Locator("#updated")).Not.ToBeEmptyAsync();
        await Assertions.Expect(prompt).ToBeHiddenAsync();

        // A new session asks again.
        var (otherContext, other) = await chromium.OpenAsync(ion.Client.BaseAddress!, _scriptErrors);
        await using var __ = otherContext;
        await Assertions.Expect(other.Locator("#token-dialog")).ToBeVisibleAsync();
        AssertNoScriptErrors();
    }

    [Fact]
    public async Task Activity_CountsTheQueue_TheLastHourPerMinute_AndTheLatestFinished()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(("nobody", 550, "5.1.1 No such user")));
        await using var ion = await IonServer.StartAsync(relay.Port);
        var before = TimeProvider.System.GetUtcNow();
        await ion.PublishAsync(Message("a-1", "one@example.com"));
        await ion.WaitForStatusAsync("a-1", r => r.State == MessageState.Sent, Wait);
        await ion.PublishAsync(Message("a-2", "nobody@example.com"));
        await ion.WaitForStatusAsync("a-2", r => r.State == MessageState.Dead, Wait);
        await ion.PublishAsync(Message("a-3", "three@example.com"));
        await ion.WaitForStatusAsync("a-3", r => r.State == MessageState.Sent, Wait);

        var activity = await ion.Client.GetFromJsonAsync<JsonElement>("/v1/activity", Token);
        var after = TimeProvider.System.GetUtcNow();

        Assert.Equal((0, 0, 1), (activity.GetProperty("queued").GetInt64(), activity.GetProperty("in_flight").GetInt64(), activity.GetProperty("dead_letters").GetInt64()));
        Assert.Equal(2, activity.GetProperty("sent_last_hour").GetInt64());
        var minutes = activity.GetProperty("throughput").EnumerateArray().ToList();
        Assert.Equal(60, minutes.Count);
        Assert.Equal(2, minutes.Sum(m => m.GetProperty("sent").GetInt32()));
        Assert.Equal(1, minutes.Sum(m => m.GetProperty("failed").GetInt32()));
        var last = minutes[^1].GetProperty("minute").GetDateTimeOffset();
        Assert.InRange(last, after.AddMinutes(-1), after);
        Assert.Equal(last.AddMinutes(-59), minutes[0].GetProperty("minute").GetDateTimeOffset());
        Assert.All(minutes.Where(m => m.GetProperty("minute").GetDateTimeOffset() < before.AddMinutes(-1)), m => Assert.Equal(0, m.GetProperty("sent").GetInt32()));
        var recent = activity.GetProperty("recent").EnumerateArray().ToList();
        Assert.Equal(["a-3", "a-2", "a-1"], recent.Select(r => r.GetProperty("id").GetString()));
        Assert.Equal(["sent", "dead", "sent"], recent.Select(r => r.GetProperty("state").GetString()));
        Assert.Equal("permanent", recent[1].GetProperty("failure_class").GetString());
        Assert.Contains("550 5.1.1 No such user", recent[1].GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal("nobody@example.com", recent[1].GetProperty("recipients")[0].GetProperty("address").GetString());

        Assert.Single((await ion.Client.GetFromJsonAsync<JsonElement>("/v1/activity?recent=1", Token)).GetProperty("recent").EnumerateArray());
        Assert.Equal(HttpStatusCode.BadRequest, (await ion.Client.GetAsync("/v1/activity?recent=101", Token)).StatusCode);
    }

    [Fact]
    public async Task OnTheAwsStore_ThePageSaysThereIsNoHistory_InsteadOfAChart_AndStillFindsMessagesAndDeadLetters()
    {
        await using var aws = new AwsEmulators();
        await aws.InitializeAsync();
        var resources = await aws.ProvisionAsync();
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(sink.Port, aws.Settings(resources));
        await ion.PublishAsync(Message("aws-1", "a@example.com"));
        await ion.WaitForStatusAsync("aws-1", r => r.State == MessageState.Sent, Wait);

        var activity = await ion.Client.GetFromJsonAsync<JsonElement>("/v1/activity", Token);
        Assert.Equal(JsonValueKind.Null, activity.GetProperty("throughput").ValueKind);
        Assert.Equal(JsonValueKind.Null, activity.GetProperty("recent").ValueKind);
        Assert.Equal(JsonValueKind.Null, activity.GetProperty("sent_last_hour").ValueKind);

        var (context, page) = await chromium.OpenAsync(ion.Client.BaseAddress!, _scriptErrors);
        await using var _ = context;
        await Assertions.Expect(page.Locator("#no-history")).ToContainTextAsync("keeps no per-minute history");
        await Assertions.Expect(page.Locator("#chart svg")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#recent-none")).ToContainTextAsync("cannot list recent deliveries");
        await Assertions.Expect(page.Locator("#count-sent")).ToHaveTextAsync("–");
        await Assertions.Expect(page.Locator("#count-queued")).ToHaveTextAsync("0");
        await Assertions.Expect(page.Locator("#dead-summary")).ToHaveTextAsync("No dead letters.");

        await page.FillAsync("#find-id", "aws-1");
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("sent");
        await Assertions.Expect(page.Locator("#message").GetByRole(AriaRole.Table, new() { Name = "Recipients" })).ToContainTextAsync("a@example.com");
        AssertNoScriptErrors();
    }

    /// <summary>
    /// The screenshot the README shows, written to the test output folder on every run. <c>docs/dashboard.png</c> stays
    /// as committed unless asked for: <c>ION_UPDATE_SCREENSHOT=1</c> (see the README's Dashboard section) copies it there.
    /// The last hour before this minute is written into ion's log through the log itself with a clock set back, so the
    /// chart has an hour to show; this minute's deliveries, dead letters and everything else are real.
    /// </summary>
    [Fact]
    public async Task Screenshot_OfADashboardWithAnHourOfMail()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(
            ("nobody", 550, "5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"),
            ("full", 552, "5.2.2 Mailbox full"),
            ("blocked", 554, "5.7.1 Message rejected as spam")));
        await using var ion = await IonServer.StartAsync(relay.Port);
        await WriteAnHourAsync(Path.Combine(ion.DataDirectory, "ion.db"));
        string[] recipients = ["ada@example.com", "grace@example.net", "nobody@example.org", "linus@example.com", "full@example.net",
            "ken@example.com", "barbara@example.org", "blocked@example.com", "margaret@example.com", "dennis@example.net"];
        foreach (var (recipient, i) in recipients.Select((r, i) => (r, i)))
            await ion.PublishAsync(Message($"order-{4100 + i}", recipient, "Your order"));
        foreach (var i in Enumerable.Range(0, recipients.Length))
            await ion.WaitForStatusAsync($"order-{4100 + i}", r => r.State is MessageState.Sent or MessageState.Dead, Wait);

        var (context, page) = await chromium.OpenAsync(ion.Client.BaseAddress!, _scriptErrors);
        await using var _ = context;
        await Assertions.Expect(page.Locator("#count-dead")).ToHaveTextAsync("3");
        await Assertions.Expect(page.Locator("#dead tbody tr")).ToHaveCountAsync(3);
        await Assertions.Expect(RecentRow(page, "order-4109")).ToContainTextAsync("sent");
        await page.GetByRole(AriaRole.Checkbox, new() { Name = "Select order-4102" }).CheckAsync();
        await Assertions.Expect(page.Locator("#redrive-selected")).ToHaveTextAsync("Redrive selected (1)");

        var shot = Path.Combine(AppContext.BaseDirectory, "dashboard.png");
        await page.ScreenshotAsync(new() { Path = shot, FullPage = true });

        var png = await File.ReadAllBytesAsync(shot, Token);
        Assert.Equal([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], png[..8]);
        Assert.Equal(1280, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16, 4)));
        Assert.InRange(BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20, 4)), 900, 4000);
        var committed = Path.Combine(Repository.Root, "docs", "dashboard.png");
        if (Environment.GetEnvironmentVariable("ION_UPDATE_SCREENSHOT") == "1")
            File.Copy(shot, committed, overwrite: true);
        Assert.True(File.Exists(committed), $"{committed} is missing: ION_UPDATE_SCREENSHOT=1 makes this test write it");
        Assert.Contains("](docs/dashboard.png)", await File.ReadAllTextAsync(Path.Combine(Repository.Root, "README.md"), Token), StringComparison.Ordinal);
        AssertNoScriptErrors();
    }

    /// <summary>Sent and retried messages in each of the 59 minutes before this one, recorded by ion's own log with a
    /// clock set to each minute (a retried message goes out the minute after): busier towards now.</summary>
    private static async Task WriteAnHourAsync(string databasePath)
    {
        var time = new FakeTimeProvider(TimeProvider.System.GetUtcNow().AddMinutes(-59));
        using var database = new SqliteDatabase(databasePath);
        var log = new SqliteDeliveryLog(database, time);
        List<string> retrying = [];
        for (var minute = 0; minute <= 59; minute++)
        {
            var sent = minute == 59 ? 0 : 6 + minute * 7 % 11 + minute / 4;
            var failed = minute == 59 ? 0 : minute % 9 == 4 ? 3 : minute % 5 == 2 ? 1 : 0;
            List<string> fresh = [.. Enumerable.Range(0, sent + failed).Select(i => $"earlier-{minute:00}-{i:00}")];
            await log.ClaimAsync([.. fresh.Concat(retrying).Select(id => new ClaimRequest(id, id, time.GetUtcNow()))], TimeSpan.FromMinutes(1), Token);
            await log.RecordAsync(
            [
                .. fresh.Take(sent).Concat(retrying).Select(id => Entry(id, MessageState.Sent, "sent", 250, "2.0.0 Ok")),
                .. fresh.Skip(sent).Select(id => Entry(id, MessageState.Retrying, "retry", 451, "4.3.0 Try again later")),
            ], Token);
            retrying = [.. fresh.Skip(sent)];
            time.Advance(TimeSpan.FromMinutes(1));
        }

        DeliveryEntry Entry(string id, MessageState state, string outcome, int code, string reply) => new(id, id, state,
            new DeliveryAttempt(time.GetUtcNow(), outcome, code, $"{code} {reply}", TimeSpan.FromMilliseconds(40)),
            [new RecipientStatus($"customer-{id}@example.com", state == MessageState.Sent ? RecipientState.Sent : RecipientState.Pending, code, reply)],
            1, state == MessageState.Sent ? null : $"{code} {reply}");
    }

    [Fact]
    public async Task TheSuppressionList_ShowsWhatARefusalAdded_LooksAnAddressOrADomainUp_AndRemovesIt()
    {
        await using var relay = await ScriptedSmtpServer.StartAsync(SmtpScripts.RefuseRecipients(
            ("bob@gone.example", 550, "5.1.1 <bob@gone.example>: Recipient address rejected: User unknown")));
        await using var ion = await IonServer.StartAsync(relay.Port);
        await ion.PublishAsync(Message("to-bob", "bob@gone.example"));
        await ion.WaitForStatusAsync("to-bob", r => r.State == MessageState.Dead, Wait);
        (await ion.Client.PostAsJsonAsync("/v1/suppressions", new { address = "carol@other.example", reason = "complaint", detail = "marked as spam" }, Token)).EnsureSuccessStatusCode();

        var (context, page) = await chromium.OpenAsync(ion.Client.BaseAddress!, _scriptErrors);
        await using var _ = context;
        var rows = page.Locator("#suppressions tbody tr");
        await Assertions.Expect(rows.Locator("td:nth-child(1)")).ToHaveTextAsync(["bob@gone.example", "carol@other.example"]);
        var bob = page.Locator("#suppressions tbody tr[data-address='bob@gone.example']");
        await Assertions.Expect(bob).ToContainTextAsync("bounce");
        await Assertions.Expect(bob).ToContainTextAsync("5.1.1");
        await Assertions.Expect(page.Locator("#suppressions tbody tr[data-address='carol@other.example']")).ToContainTextAsync("until removed");

        // The message that found bob opens from his row.
        await bob.GetByRole(AriaRole.Button, new() { Name = "to-bob", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("#message").GetByRole(AriaRole.Table, new() { Name = "Recipients" })).ToContainTextAsync("550");
        await page.Locator("#message").GetByRole(AriaRole.Button, new() { Name = "Close" }).ClickAsync();

        // By domain, by address (any case), and an address that is not on it.
        await page.FillAsync("#suppression-query", "other.example");
        await page.ClickAsync("#suppression-find button");
        await Assertions.Expect(rows.Locator("td:nth-child(1)")).ToHaveTextAsync(["carol@other.example"]);
        await page.FillAsync("#suppression-query", "BOB@gone.example");
        await page.PressAsync("#suppression-query", "Enter");
        await Assertions.Expect(rows.Locator("td:nth-child(1)")).ToHaveTextAsync(["bob@gone.example"]);
        await page.FillAsync("#suppression-query", "dave@gone.example");
        await page.ClickAsync("#suppression-find button");
        await Assertions.Expect(page.Locator("#suppressions-summary")).ToHaveTextAsync("dave@gone.example is not suppressed: ion sends to it.");
        await Assertions.Expect(page.Locator("#suppressions")).ToBeHiddenAsync();

        await page.FillAsync("#suppression-query", "");
        await page.ClickAsync("#suppression-find button");
        await bob.GetByRole(AriaRole.Button, new() { Name = "Remove bob@gone.example" }).ClickAsync();
        await Assertions.Expect(page.Locator("#suppressions-status")).ToHaveTextAsync("Removed bob@gone.example: ion sends to it again.");
        await Assertions.Expect(rows.Locator("td:nth-child(1)")).ToHaveTextAsync(["carol@other.example"]);
        Assert.Equal(HttpStatusCode.NotFound, (await ion.Client.GetAsync("/v1/suppressions/bob@gone.example", Token)).StatusCode);
        AssertNoScriptErrors();
    }

    [Fact]
    public async Task WithAFallbackRelay_BothRelaysAreShown_AndAnAttemptSaysWhichRelayTookIt()
    {
        await using var fallback = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(Ports.Free(),
            "--Ion:Smtp:Fallback:Host=127.0.0.1", $"--Ion:Smtp:Fallback:Port={fallback.Port}", "--Ion:Smtp:Fallback:Security=None");
        await ion.PublishAsync(Message("carried-1", "alice@example.com"));
        await ion.WaitForStatusAsync("carried-1", r => r.State == MessageState.Sent, Wait);

        var (context, page) = await chromium.OpenAsync(ion.Client.BaseAddress!, _scriptErrors);
        await using var _ = context;
        await Assertions.Expect(page.Locator("#relay")).ToContainTextAsync("Relay down");
        await Assertions.Expect(page.Locator("#relay")).ToHaveAttributeAsync("data-state", "down");
        await Assertions.Expect(page.Locator("#fallback")).ToHaveTextAsync("Fallback relay up");
        await Assertions.Expect(page.Locator("#fallback")).ToHaveAttributeAsync("data-state", "up");

        await page.Locator("#find-id").FillAsync("carried-1");
        await page.GetByRole(AriaRole.Button, new() { Name = "Open", Exact = true }).ClickAsync();
        var attempts = page.Locator("#message").GetByRole(AriaRole.Table, new() { Name = "Attempts" });
        await Assertions.Expect(attempts.Locator("th")).ToContainTextAsync(["Time", "Outcome", "Relay", "Code", "Reply", "Duration"]);
        await Assertions.Expect(attempts.Locator("tbody tr td:nth-child(3)")).ToHaveTextAsync("fallback");
        AssertNoScriptErrors();
    }

    [Fact]
    public async Task AWebhookThatRefusesEvents_ShowsItsDeadEventsAndWhy()
    {
        await using var receiver = await WebhookReceiver.StartAsync("dashboard-webhook-secret-0123");
        receiver.Status = 500;
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(sink.Port,
            $"--Ion:Events:Webhooks:shop:Url={receiver.Url}", "--Ion:Events:Webhooks:shop:Secret=dashboard-webhook-secret-0123",
            "--Ion:Events:Webhooks:shop:Types:0=accepted", "--Ion:Events:RetryFor=00:00:02");
        await ion.PublishAsync(Message("hooked-1", "alice@example.com"));

        var (context, page) = await chromium.OpenAsync(ion.Client.BaseAddress!, _scriptErrors);
        await using var _ = context;
        var row = page.Locator("#webhooks tbody tr[data-webhook='shop']");
        await Assertions.Expect(row).ToContainTextAsync(receiver.Url);
        await Assertions.Expect(row.Locator("td:nth-child(4)")).ToHaveTextAsync("1", new() { Timeout = 30_000 });
        await Assertions.Expect(row).ToContainTextAsync("answered 500");
        var list = await ion.Client.GetFromJsonAsync<JsonElement>("/v1/webhooks", Token);
        var shop = Assert.Single(list.GetProperty("webhooks").EnumerateArray());
        Assert.Equal(1, shop.GetProperty("dead").GetInt32());
        Assert.Equal(0, shop.GetProperty("pending").GetInt32());
        Assert.DoesNotContain("secret", shop.ToString(), StringComparison.OrdinalIgnoreCase);
        AssertNoScriptErrors();
    }

    private static ILocator RecentRow(IPage page, string id) => page.Locator($"#recent tbody tr[data-id='{id}']");

    private static ILocator DeadRow(IPage page, string id) => page.Locator($"#dead tbody tr[data-id='{id}']");

    /// <summary>Presses Tab (nothing else) until the focused element satisfies <paramref name="predicate"/> (a JS
    /// function of the element), then checks that the focus shows: the browser's :focus-visible and the page's outline.</summary>
    private static async Task TabToAsync(IPage page, string predicate, string what)
    {
        for (var presses = 0; presses < 200; presses++)
        {
            // Where the focus is already (a dialog puts it on its first button) counts as reached.
            if (presses > 0)
                await page.Keyboard.PressAsync("Tab");
            if (await page.EvaluateAsync<bool>($"() => {{ const el = document.activeElement; return !!el && ({predicate})(el); }}"))
            {
                var focus = await page.EvaluateAsync<string>(
                    "() => { const el = document.activeElement, style = getComputedStyle(el); return `${el.matches(':focus-visible')} ${style.outlineStyle} ${style.outlineWidth}`; }");
                Assert.Equal("true solid 3px", focus);
                return;
            }
        }
        Assert.Fail($"Tab never reached {what}");
    }

    private static HttpRequestMessage Authorized(HttpMethod method, string path, object? body = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Secret);
        return request;
    }

    [Fact]
    public async Task AScheduledMessage_ShowsItsTime_AndIsCancelledFromItsView()
    {
        await using var sink = await SmtpSink.StartAsync();
        await using var ion = await IonServer.StartAsync(sink.Port);
        var sendAt = TimeProvider.System.GetUtcNow().AddHours(1);
        await ion.PublishAsync(new
        {
            action = "send", id = "sched-1", recipient = "a@example.com", subject = "later", body_text = "x",
            send_at = sendAt.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
        });

        var (context, page) = await chromium.OpenAsync(ion.Client.BaseAddress!, _scriptErrors);
        await using var _ = context;
        await page.FillAsync("#find-id", "sched-1");
        await page.Keyboard.PressAsync("Enter");

        var view = page.Locator("#message");
        await Assertions.Expect(view.Locator(".badge-scheduled")).ToHaveTextAsync("scheduled");
        await Assertions.Expect(view).ToContainTextAsync("Send at");
        var shown = await view.Locator("dd time").Last.GetAttributeAsync("datetime");
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(sendAt.ToUnixTimeSeconds()), DateTimeOffset.Parse(shown!, CultureInfo.InvariantCulture));
        await Assertions.Expect(page.Locator("#message-redrive")).ToBeHiddenAsync();
        await page.ClickAsync("#message-cancel");

        await Assertions.Expect(view).ToContainTextAsync("Cancelled sched-1: it will not be sent.");
        await Assertions.Expect(view.Locator(".badge-cancelled")).ToHaveTextAsync("cancelled");
        await Assertions.Expect(page.Locator("#message-cancel")).ToBeHiddenAsync();
        Assert.Equal(MessageState.Cancelled, (await ion.StatusAsync("sched-1"))!.State);
        AssertNoScriptErrors();
    }

    private void AssertNoScriptErrors()
    {
        lock (_scriptErrors)
            Assert.Empty(_scriptErrors);
    }

}
