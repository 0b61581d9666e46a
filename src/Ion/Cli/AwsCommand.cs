using System.CommandLine;
using Amazon.Runtime;
using Ion.Stores.Aws;

namespace Ion.Cli;

/// <summary><c>ion aws provision [--prefix NAME]</c>: creates the queues, topic, subscription and table the AWS store
/// needs where they are missing (with <c>--feedback</c>, SES's feedback topic and queue too; with <c>--events</c> the
/// delivery events topic, and with <c>--webhook NAME</c> a webhook's queue on it; with <c>--payloads</c> the bucket for
/// large messages), and prints the settings as
/// lines a shell can <c>export</c>.</summary>
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
        Option<string> prefix = new("--prefix") { Description = "Names the resources: PREFIX-mail, PREFIX-dead-letters, PREFIX-log, PREFIX-suppressions", DefaultValueFactory = _ => "ion" };
        Option<bool> feedback = new("--feedback") { Description = "Also PREFIX-feedback: a topic for SES's bounce and complaint notifications and the queue ion serve reads them from (Ion:Aws:FeedbackQueueUrl)" };
        Option<bool> events = new("--events") { Description = "Also PREFIX-events: the SNS topic ion publishes delivery events to (Ion:Aws:EventsTopicArn)" };
        Option<string[]> webhooks = new("--webhook")
        {
            Description = "Also a queue PREFIX-webhook-NAME (and -dead) on the events topic for the webhook Ion:Events:Webhooks:NAME (Ion:Aws:WebhookQueueUrls:NAME); repeat for several",
            AllowMultipleArgumentsPerToken = false,
        };
        Option<bool> payloads = new("--payloads")
        {
            Description = "Also the S3 bucket PREFIX-payloads-ACCOUNT-REGION for messages larger than SNS's 256 KB, with a rule expiring what is left after 14 days (Ion:Aws:PayloadBucket)",
        };
        Command command = new("provision", "Create the queues, topic, subscription and tables ion needs unless they exist; print the settings to export.") { prefix, feedback, events, webhooks, payloads };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) => CliOutput.RunAsync(async () =>
        {
            var settings = CommandLineSettings.Of(parse, out var error);
            if (settings is null)
                return CliOutput.Fail(CliOutput.Invalid, error!);
            var name = parse.GetValue(prefix)!;
            if (AwsProvisioner.CheckPrefix(name) is { } invalid)
                return CliOutput.Fail(CliOutput.Invalid, invalid);
            var hooks = parse.GetValue(webhooks) ?? [];
            if (hooks.Select(w => AwsProvisioner.CheckWebhookName(name, w)).FirstOrDefault(e => e is not null) is { } badWebhook)
                return CliOutput.Fail(CliOutput.Invalid, badWebhook);

            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
            {
                Args = settings,
                ContentRootPath = AppContext.BaseDirectory,
            });
            builder.AddIonConfiguration(settings);
            var aws = builder.Configuration.GetSection(AwsOptions.Section).Get<AwsOptions>() ?? new AwsOptions();
            if (!string.IsNullOrWhiteSpace(aws.ServiceUrl) && !IsHttpUrl(aws.ServiceUrl))
                return CliOutput.Fail(CliOutput.Invalid, $"{AwsOptions.Section}:ServiceUrl must be an http(s) URL (is '{aws.ServiceUrl}')");
            if (!string.IsNullOrWhiteSpace(aws.DynamoDbServiceUrl) && !IsHttpUrl(aws.DynamoDbServiceUrl))
                return CliOutput.Fail(CliOutput.Invalid, $"{AwsOptions.Section}:DynamoDbServiceUrl must be an http(s) URL (is '{aws.DynamoDbServiceUrl}')");
            // No region or no credentials: a configuration error, one line.
            using var clients = AwsClients.Create(aws);
            if (parse.GetValue(payloads) && AwsProvisioner.CheckPayloadBucket(name, aws.Region!) is { } badBucket)
                return CliOutput.Fail(CliOutput.Invalid, badBucket);
            using var s3 = parse.GetValue(payloads) ? clients.NewS3Client() : null;
            var provisioner = new AwsProvisioner(clients.Sqs, clients.Sns, clients.DynamoDb, s3: s3);

            AwsProvisioning provisioned;
            try
            {
                provisioned = await provisioner.ProvisionAsync(name,
                    new ProvisionExtras(parse.GetValue(feedback), parse.GetValue(events), hooks, parse.GetValue(payloads)), cancellationToken);
            }
            catch (SnsException failure)
            {
                return CliOutput.Fail(CliOutput.Failed, failure.Message);
            }
            catch (InvalidOperationException failure)
            {
                // A table of that name without the delivery log's or the suppression list's index.
                return CliOutput.Fail(CliOutput.Failed, failure.Message);
            }
            catch (Amazon.S3.AmazonS3Exception failure)
            {
                return CliOutput.Fail(CliOutput.Failed, $"S3: {OneLine(failure.Message)}");
            }
            catch (Exception failure) when (failure is AmazonServiceException or AmazonClientException or HttpRequestException)
            {
                // Only the SQS client throws the SDK's exceptions here; SnsTopic and the table's creation name their call already.
                var where = string.IsNullOrWhiteSpace(aws.ServiceUrl) ? aws.Region : aws.ServiceUrl;
                return CliOutput.Fail(CliOutput.Failed, $"SQS ({where}): {OneLine(failure.Message)}");
            }
            foreach (var change in provisioned.Changes)
                Console.Error.WriteLine(change);
            if (provisioned.Changes.Count == 0)
                Console.Error.WriteLine("everything was there already");
            if (provisioned.Resources.FeedbackTopicArn is { } feedbackTopic)
                Console.Error.WriteLine($"have SES publish bounces and complaints to {feedbackTopic}");

            var r = provisioned.Resources;
            Console.WriteLine("Ion__Store=Aws");
            Console.WriteLine($"Ion__Aws__Region={aws.Region}");
            Console.WriteLine($"Ion__Aws__QueueUrl={r.QueueUrl}");
            Console.WriteLine($"Ion__Aws__DeadLetterQueueUrl={r.DeadLetterQueueUrl}");
            Console.WriteLine($"Ion__Aws__TopicArn={r.TopicArn}");
            Console.WriteLine($"Ion__Aws__TableName={r.TableName}");
            Console.WriteLine($"Ion__Aws__SuppressionTable={r.SuppressionTable}");
            if (r.FeedbackQueueUrl is not null)
                Console.WriteLine($"Ion__Aws__FeedbackQueueUrl={r.FeedbackQueueUrl}");
            if (r.EventsTopicArn is not null)
                Console.WriteLine($"Ion__Aws__EventsTopicArn={r.EventsTopicArn}");
            foreach (var (webhook, url) in r.WebhookQueueUrls ?? new Dictionary<string, string>())
                Console.WriteLine($"Ion__Aws__WebhookQueueUrls__{webhook}={url}");
            if (r.PayloadBucket is not null)
                Console.WriteLine($"Ion__Aws__PayloadBucket={r.PayloadBucket}");
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
