using System.Net;
using System.Net.Sockets;

namespace Ion.Tests.Fixtures;

internal static class Ports
{
    /// <summary>A port nothing listens on right now (the OS picks it), on loopback.</summary>
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static async Task<bool> IsListeningAsync(int port)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public static async Task WaitUntilListeningAsync(int port, TimeSpan timeout)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (!await IsListeningAsync(port))
        {
            if (Environment.TickCount64 > deadline)
                throw new TimeoutException($"nothing listens on 127.0.0.1:{port} after {timeout}");
            await Task.Delay(25);
        }
    }
}
