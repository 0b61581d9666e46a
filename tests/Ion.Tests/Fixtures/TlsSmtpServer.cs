using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace Ion.Tests.Fixtures;

/// <summary>
/// A relay that speaks STARTTLS (or TLS on connect) and requires AUTH: the npm package smtp-server (nodemailer's),
/// run by tools/smtp-tls-server.mjs on 127.0.0.1 with a self-signed certificate made here. test.sh installs it
/// (npm ci in tools/).
/// </summary>
public sealed class TlsSmtpServer : IAsyncDisposable
{
    public const string User = "ion";
    public const string Password = "s3cret-relay-password";
    private readonly Process _process;
    private readonly string _folder;

    private TlsSmtpServer(Process process, string folder, int port, string certificateSha256)
    {
        _process = process;
        _folder = folder;
        Port = port;
        CertificateSha256 = certificateSha256;
    }

    public int Port { get; }
    public string CertificateSha256 { get; }
    public string OutFolder => Path.Combine(_folder, "out");

    public static async Task<TlsSmtpServer> StartAsync(bool implicitTls = false)
    {
        var folder = Directory.CreateTempSubdirectory("ion-tls-").FullName;
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(TimeProvider.System.GetUtcNow().AddDays(-1), TimeProvider.System.GetUtcNow().AddDays(30));
        var keyPath = Path.Combine(folder, "key.pem");
        var certPath = Path.Combine(folder, "cert.pem");
        await File.WriteAllTextAsync(keyPath, key.ExportPkcs8PrivateKeyPem());
        await File.WriteAllTextAsync(certPath, certificate.ExportCertificatePem());

        var port = Ports.Free();
        var info = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(ToolsFolder(), "smtp-tls-server.mjs"));
        info.Environment["SMTP_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Environment["SMTP_OUT"] = Path.Combine(folder, "out");
        info.Environment["SMTP_KEY"] = keyPath;
        info.Environment["SMTP_CERT"] = certPath;
        info.Environment["SMTP_USER"] = User;
        info.Environment["SMTP_PASS"] = Password;
        info.Environment["SMTP_IMPLICIT_TLS"] = implicitTls ? "1" : "0";
        var process = Process.Start(info) ?? throw new InvalidOperationException("node did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new TlsSmtpServer(process, folder, port, certificate.GetCertHashString(HashAlgorithmName.SHA256));
        try
        {
            await Ports.WaitUntilListeningAsync(port, TimeSpan.FromSeconds(15));
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    /// <summary>The envelopes of accepted messages: user, secure (TLS on), from, to.</summary>
    public IReadOnlyList<JsonElement> Envelopes() =>
        Directory.Exists(OutFolder)
            ? [.. Directory.GetFiles(OutFolder, "*.json").Select(f => JsonDocument.Parse(File.ReadAllText(f)).RootElement.Clone())]
            : [];

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    private static string ToolsFolder()
    {
        var tools = Repository.Path("tools");
        if (!Directory.Exists(Path.Combine(tools, "node_modules", "smtp-server")))
            throw new InvalidOperationException("tools/node_modules/smtp-server is missing: run ./test.sh, which installs it with npm ci");
        return tools;
    }
}
