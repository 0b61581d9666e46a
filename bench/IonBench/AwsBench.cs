using System.CommandLine;
using System.Diagnostics;
using Amazon;
using Amazon.DynamoDBv2;
using Amazon.Runtime;
using Amazon.Runtime.Credentials;
using Amazon.SQS;

namespace IonBench;

/// <summary>What the AWS-mode commands share: the emulator endpoints as options, and SDK clients configured the way
/// ion's own <c>AwsClients</c> configures them (credentials from the standard chain, the endpoint as ServiceURL, the
/// region only for signing).</summary>
internal static class AwsBench
{
    public static Option<string> ServiceUrl(string description) => new("--service-url") { Description = description, Required = true };

    public static Option<string> Region() => new("--region") { Description = "the region the resources were provisioned in", DefaultValueFactory = _ => "us-east-1" };

    public static AWSCredentials Credentials() => DefaultAWSCredentialsIdentityResolver.GetCredentials();

    public static AmazonSQSClient Sqs(string serviceUrl, string region) =>
        new(Credentials(), new AmazonSQSConfig { ServiceURL = serviceUrl, AuthenticationRegion = region });

    public static AmazonDynamoDBClient DynamoDb(string serviceUrl, string region) =>
        new(Credentials(), new AmazonDynamoDBConfig { ServiceURL = serviceUrl, AuthenticationRegion = RegionEndpoint.GetBySystemName(region).SystemName });

    /// <summary>This process's CPU time so far (user + system), in ns.</summary>
    public static long CpuNanoseconds()
    {
        using var self = Process.GetCurrentProcess();
        return (long)(self.TotalProcessorTime.TotalMilliseconds * 1e6);
    }
}
