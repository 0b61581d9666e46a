using System.Net.Http.Json;
using System.Text.Json;
using Ion.Log;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Ion.Tests.Fixtures;

/// <summary>
/// ion itself, in-process, exactly as <c>ion serve</c> builds it: real Kestrel on 127.0.0.1 with a free port, the
/// SQLite file in a temp folder, delivering to the given SMTP port on loopback. Retries are fast so tests are.
/// </summary>
public sealed class IonServer : IAsyncDisposable
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    private IonServer(WebApplication app, string dataDirectory, HttpClient client)
    {
        App = app;
        DataDirectory = dataDirectory;
        Client = client;
    }

    public WebApplication App { get; }
    public string DataDirectory { get; }
    public HttpClient Client { get; }
    public IServiceProvider Services => App.Services;

    public static async Task<IonServer> StartAsync(int smtpPort, params string[] settings)
    {
        var dataDirectory = Directory.CreateTempSubdirectory("ion-data-").FullName;
        string[] args =
        [
            "--urls=http://127.0.0.1:0",
            $"--Ion:DataDirectory={dataDirectory}",
            "--Ion:DefaultSender=ion@test.example",
            "--Ion:Smtp:Host=127.0.0.1",
            $"--Ion:Smtp:Port={smtpPort}",
            "--Ion:Smtp:Security=None",
            "--Ion:Smtp:ConnectTimeout=00:00:05",
            "--Ion:Smtp:CommandTimeout=00:00:05",
            "--Ion:Delivery:RetryBaseDelay=00:00:00.200",
            "--Ion:Delivery:RetryMaxDelay=00:00:00.500",
            "--Ion:Delivery:RelayProbeBaseDelay=00:00:00.100",
            "--Ion:Delivery:RelayProbeMaxDelay=00:00:00.300",
            "--Ion:Delivery:PollInterval=00:00:00.100",
            "--Logging:LogLevel:Default=Warning",
            "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Warning",
            .. settings,
        ];
        var app = IonApp.Build(args);
        await app.StartAsync(TestContext.Current.CancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var client = new HttpClient { BaseAddress = new Uri(address) };
        return new IonServer(app, dataDirectory, client);
    }

    public async Task<string> PublishAsync(object message)
    {
        using var response = await Client.PostAsJsonAsync("/v1/messages", message, TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Accepted, $"publish answered {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
    }

    public async Task<DeliveryRecord?> StatusAsync(string id)
    {
        using var response = await Client.GetAsync($"/v1/messages/{Uri.EscapeDataString(id)}", TestContext.Current.CancellationToken);
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
            return null;
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<DeliveryRecord>(Json, TestContext.Current.CancellationToken);
    }

    /// <summary>Polls the status until it satisfies <paramref name="done"/>.</summary>
    public async Task<DeliveryRecord> WaitForStatusAsync(string id, Func<DeliveryRecord, bool> done, TimeSpan? timeout = null)
    {
        var deadline = Environment.TickCount64 + (long)(timeout ?? TimeSpan.FromSeconds(20)).TotalMilliseconds;
        DeliveryRecord? last = null;
        while (Environment.TickCount64 < deadline)
        {
            last = await StatusAsync(id);
            if (last is not null && done(last))
                return last;
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        throw new TimeoutException($"message {id} never reached the expected state; last: {JsonSerializer.Serialize(last, Json)}");
    }

    /// <summary>GET /healthz, as JSON.</summary>
    public async Task<JsonElement> HealthAsync() =>
        await Client.GetFromJsonAsync<JsonElement>("/healthz", TestContext.Current.CancellationToken);

    /// <summary>The relay's state as /healthz tells it: up, down or throttled.</summary>
    public async Task<string> RelayStateAsync() =>
        (await HealthAsync()).GetProperty("relay").GetProperty("state").GetString()!;

    /// <summary>Polls until <paramref name="condition"/> holds, or fails saying <paramref name="what"/>.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = Environment.TickCount64 + (long)(timeout ?? TimeSpan.FromSeconds(20)).TotalMilliseconds;
        while (!await condition())
        {
            if (Environment.TickCount64 > deadline)
                throw new TimeoutException($"never true in time: {what}");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync(CancellationToken.None);
        await App.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
