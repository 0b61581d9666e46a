using System.Net;
using System.Text;
using System.Text.Json;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Ion.Queues;

namespace Ion.Stores.Aws;

/// <summary>
/// Messages too large for SNS (256 KB) kept in S3, with a small pointer in their place on the topic and the queue: the
/// pattern of AWS's "extended client" libraries for SQS and SNS (Java, Python), whose pointer and attribute ion writes
/// and reads, so an application that publishes through one of those libraries is read as ion's own messages are.
/// </summary>
/// <remarks>
/// The pointer is <c>["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"B","s3Key":"K"}]</c>, and
/// the message carries the payload's size in UTF-8 bytes as its <c>ExtendedPayloadSize</c> attribute. No library for this
/// is served for .NET (Amazon.Extensions.* are not), so this is the smallest version of it: put, get, delete.
/// </remarks>
public sealed class S3Payloads(IAmazonS3 s3, string bucket)
{
    /// <summary>The attribute the extended clients mark an offloaded message with (its payload's size).</summary>
    public const string SizeAttribute = "ExtendedPayloadSize";

    private const string PointerClass = "software.amazon.payloadoffloading.PayloadS3Pointer";

    public string Bucket { get; } = bucket;

    /// <summary>Stores <paramref name="body"/> under a new key; returns the pointer to send in its place.</summary>
    public async Task<string> PutAsync(string body, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        var key = Guid.NewGuid().ToString("N");
        var request = new PutObjectRequest { BucketName = Bucket, Key = key, ContentBody = body, ContentType = "application/json" };
        await CallAsync("PutObject", key, () => s3.PutObjectAsync(request, cancellationToken));
        return ReferenceTo(Bucket, key);
    }

    /// <summary>The payload a pointer names, read whole; a payload S3 does not have (deleted, expired, never put) is an
    /// <see cref="OffloadedBody"/> with its <see cref="OffloadedBody.Error"/>, never an exception, so the message is
    /// dead-lettered with that reason rather than kept coming back.</summary>
    /// <exception cref="StoreUnavailableException">S3 did not answer, or refused ion (credentials, policy).</exception>
    public async Task<(string Body, OffloadedBody Offloaded)> GetAsync(string reference, string bucketName, string key, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await s3.GetObjectAsync(new GetObjectRequest { BucketName = bucketName, Key = key }, cancellationToken);
            using var reader = new StreamReader(response.ResponseStream, Encoding.UTF8);
            return (await reader.ReadToEndAsync(cancellationToken), new OffloadedBody(reference));
        }
        catch (AmazonS3Exception error) when (error.StatusCode == HttpStatusCode.NotFound)
        {
            // NoSuchKey, or NoSuchBucket: nothing will bring it back.
            return (reference, new OffloadedBody(reference,
                $"invalid: its payload s3://{bucketName}/{key} is not in S3 ({error.ErrorCode}): deleted, expired, or never stored"));
        }
        catch (Exception error) when (error is AmazonServiceException or HttpRequestException or IOException)
        {
            throw new StoreUnavailableException($"S3 GetObject s3://{bucketName}/{key}: {error.Message}", error);
        }
    }

    /// <summary>Deletes payloads whose messages are done. S3 answers a key it does not have as deleted, so a repeat
    /// (a second copy of the message completed) is harmless.</summary>
    public async Task DeleteAsync(IEnumerable<OffloadedBody> payloads, CancellationToken cancellationToken)
    {
        var located = payloads.Select(p => TryRead(p.Reference, out var b, out var k) ? (Bucket: b, Key: k) : default).Where(p => p.Bucket is not null);
        foreach (var group in located.GroupBy(p => p.Bucket, StringComparer.Ordinal))
        {
            // DeleteObjects takes 1,000 keys at a time.
            foreach (var chunk in group.Select(p => p.Key).Distinct(StringComparer.Ordinal).Chunk(1000))
            {
                var request = new DeleteObjectsRequest { BucketName = group.Key, Objects = [.. chunk.Select(k => new KeyVersion { Key = k })], Quiet = true };
                await CallAsync("DeleteObjects", group.Key, () => s3.DeleteObjectsAsync(request, cancellationToken));
            }
        }
    }

    /// <summary>The bucket and key of an extended client's pointer; false for any other body (checked by its first
    /// characters before it is parsed, so an ordinary message costs nothing).</summary>
    public static bool TryRead(string body, out string bucketName, out string key)
    {
        (bucketName, key) = ("", "");
        if (body.Length > 4096 || !body.AsSpan().TrimStart().StartsWith("[\"" + PointerClass + "\"", StringComparison.Ordinal))
            return false;
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement is not { ValueKind: JsonValueKind.Array } root || root.GetArrayLength() != 2
                || root[1].ValueKind != JsonValueKind.Object
                || !root[1].TryGetProperty("s3BucketName", out var b) || b.GetString() is not { Length: > 0 } bucketValue
                || !root[1].TryGetProperty("s3Key", out var k) || k.GetString() is not { Length: > 0 } keyValue)
                return false;
            (bucketName, key) = (bucketValue, keyValue);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    public static string ReferenceTo(string bucketName, string key)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            writer.WriteStringValue(PointerClass);
            writer.WriteStartObject();
            writer.WriteString("s3BucketName", bucketName);
            writer.WriteString("s3Key", key);
            writer.WriteEndObject();
            writer.WriteEndArray();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static async Task CallAsync(string call, string what, Func<Task> send)
    {
        try
        {
            await send();
        }
        catch (Exception error) when (error is AmazonServiceException or HttpRequestException or IOException)
        {
            throw new StoreUnavailableException($"S3 {call} {what}: {error.Message}", error);
        }
    }
}
