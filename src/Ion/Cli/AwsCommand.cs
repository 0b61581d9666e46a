using System.CommandLine;
using Amazon;
using Amazon.Runtime;
using Amazon.Runtime.Credentials;
using Amazon.SQS;
using Ion.Stores.Aws;

namespace Ion.Cli;

/// <summary><c>ion aws provision [--prefix NAME]</c>: creates the queues, topic and subscription the AWS store needs
/// where they are missing, and prints the settings as lines a shell can <c>export</c>.</summary>
internal static class AwsCommand
{
    public static Command Create()
    {
        Command command = new("aws", "Work with the AWS resources ion runs on.");
        command.Subcommands.Add(Provision());
        return command;
    }

    private static Command Provision()
    {
        Option<string> prefix = new("--prefix") { Description = "Names the resources: PREFIX-mail, PREFIX-dead-letters, PREFIX-log", DefaultValueFactory = _ => "ion" };
        Command command = new("provision", "Create the queues, topic and subscription ion needs unless they exist; print the settings to export.") { prefix };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) => CliOutput.RunAsync(async () =>
        {
            var settings = CommandLineSettings.Of(parse, out var error);
            if (settings is null)
                return CliOutput.Fail(CliOutput.Invalid, error!);
            var name = parse.GetValue(prefix)!;
            if (AwsProvisioner.CheckPrefix(name) is { } invalid)
                return CliOutput.Fail(CliOutput.Invalid, invalid);

            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
            {
                Args = settings,
                ContentRootPath = AppContext.BaseDirectory,
            });
            builder.AddIonConfiguration(settings);
            var aws = builder.Configuration.GetSection(AwsOptions.Section).Get<AwsOptions>() ?? new AwsOptions();
            if (string.IsNullOrWhiteSpace(aws.Region))
                return CliOutput.Fail(CliOutput.Invalid, $"{AwsOptions.Section}:Region is not set (e.g. --{AwsOptions.Section}:Region eu-west-1)");
            if (!string.IsNullOrWhiteSpace(aws.ServiceUrl) && !IsHttpUrl(aws.ServiceUrl))
                return CliOutput.Fail(CliOutput.Invalid, $"{AwsOptions.Section}:ServiceUrl must be an http(s) URL (is '{aws.ServiceUrl}')");

            AWSCredentials credentials;
            try
            {
                credentials = await DefaultAWSCredentialsIdentityResolver.GetCredentialsAsync();
            }
            catch (AmazonClientException)
            {
                return CliOutput.Fail(CliOutput.Invalid,
                    "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role");
            }

            var sqsConfig = new AmazonSQSConfig();
            if (string.IsNullOrWhiteSpace(aws.ServiceUrl))
            {
                sqsConfig.RegionEndpoint = RegionEndpoint.GetBySystemName(aws.Region);
            }
            else
            {
                sqsConfig.ServiceURL = aws.ServiceUrl;
                sqsConfig.AuthenticationRegion = aws.Region;
            }
            using var sqs = new AmazonSQSClient(credentials, sqsConfig);
            using var sns = new SnsTopic(aws.Region, aws.ServiceUrl, credentials);
            // The delivery log's table is created by DynamoDbDeliveryLog.CreateTableAsync once the AWS delivery log is
            // part of ion: (table, ct) => DynamoDbDeliveryLog.CreateTableAsync(dynamoDb, table, ct).
            Func<string, CancellationToken, Task>? createTable = null;
            var provisioner = new AwsProvisioner(sqs, sns, createTable);

            AwsProvisioning provisioned;
            try
            {
                provisioned = await provisioner.ProvisionAsync(name, cancellationToken);
            }
            catch (SnsException failure)
            {
                return CliOutput.Fail(CliOutput.Failed, failure.Message);
            }
            catch (Exception failure) when (failure is AmazonServiceException or AmazonClientException or HttpRequestException)
            {
                // Only the SQS client throws the SDK's exceptions here; SnsTopic's name their call already.
                var where = string.IsNullOrWhiteSpace(aws.ServiceUrl) ? aws.Region : aws.ServiceUrl;
                return CliOutput.Fail(CliOutput.Failed, $"SQS ({where}): {OneLine(failure.Message)}");
            }
            foreach (var change in provisioned.Changes)
                Console.Error.WriteLine(change);
            if (provisioned.Changes.Count == 0)
                Console.Error.WriteLine("everything was there already");
            if (createTable is null)
                Console.Error.WriteLine($"note: the delivery log's table {provisioned.Resources.TableName} is not created by this command yet");

            var r = provisioned.Resources;
            Console.WriteLine("Ion__Store=Aws");
            Console.WriteLine($"Ion__Aws__Region={aws.Region}");
            Console.WriteLine($"Ion__Aws__QueueUrl={r.QueueUrl}");
            Console.WriteLine($"Ion__Aws__DeadLetterQueueUrl={r.DeadLetterQueueUrl}");
            Console.WriteLine($"Ion__Aws__TopicArn={r.TopicArn}");
            Console.WriteLine($"Ion__Aws__TableName={r.TableName}");
            if (!string.IsNullOrWhiteSpace(aws.ServiceUrl))
                Console.WriteLine($"Ion__Aws__ServiceUrl={aws.ServiceUrl}");
            if (!string.IsNullOrWhiteSpace(aws.DynamoDbServiceUrl))
                Console.WriteLine($"Ion__Aws__DynamoDbServiceUrl={aws.DynamoDbServiceUrl}");
            return CliOutput.Ok;
        }));
        return command;
    }

    private static bool IsHttpUrl(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https";

    private static string OneLine(string message) =>
        message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? message;
}
