using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Ion.Delivery;
using Ion.Stores.Aws;
using Ion.Tests.Fixtures;
using static Ion.Tests.Deploy.TerraformConfig;

namespace Ion.Tests.Deploy;

/// <summary>
/// The Terraform module that deploys ion as a Lambda, checked without Terraform: (a) every type, argument and nested
/// block against the AWS provider's schema, as <c>terraform validate</c> would, and the check itself proven on a
/// misspelt copy; (b) what ion needs of the resources (redrive, raw delivery, partial batch failures, visibility,
/// alarms, the password kept out of everything but SSM, least-privilege IAM, the table's index and TTL); (c) every
/// variable described and typed.
/// </summary>
public sealed class TerraformModuleTests(TerraformFixture terraform) : IClassFixture<TerraformFixture>
{
    private TerraformConfig Module => terraform.Module;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    // --- (a) names and references, as terraform validate -------------------------------------------------------------

    [Fact]
    public void Module_UsesOnlyTypesArgumentsAndBlocksTheAwsProviderKnows_AndReferencesOnlyWhatExists()
    {
        var problems = Module.Problems();

        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.True(Module.Resources.Count >= 15, $"only {Module.Resources.Count} resources were read from {Module.Directory}");
    }

    [Fact]
    public void Example_IsValid_AndSetsOnlyVariablesTheModuleHas()
    {
        var problems = terraform.Example.Problems(new Dictionary<string, TerraformConfig> { [TerraformFixture.ModuleSource] = Module });

        Assert.True(problems.Count == 0, string.Join("\n", problems));
        var call = Assert.Single(terraform.Example.Modules).Value;
        Assert.Equal(TerraformFixture.ModuleSource, (string?)call["source"]);
        Assert.Equal(TerraformFixture.ModuleDirectory, Path.GetFullPath(Path.Combine(TerraformFixture.ExampleDirectory, TerraformFixture.ModuleSource)));
        Assert.EndsWith("/../../../lambda/dist/ion-lambda-arm64.zip", (string?)call["package_path"], StringComparison.Ordinal);
        Assert.Equal("${var.region}", (string?)terraform.Example.Providers["aws"]["region"]);
    }

    [Fact]
    public async Task TheCheck_ReportsAMisspeltArgument()
    {
        var problems = await ProblemsOfAsync("""
            variable "lambda_timeout_seconds" {
              description = "How long the function may run."
              type        = number
            }

            resource "aws_sqs_queue" "input" {
              name                      = "ion-mail"
              visibilty_timeout_seconds = 6 * var.lambda_timeout_seconds
            }
            """);

        var problem = Assert.Single(problems);
        Assert.Contains("aws_sqs_queue.input", problem, StringComparison.Ordinal);
        Assert.Contains("\"visibilty_timeout_seconds\"", problem, StringComparison.Ordinal);
        Assert.Contains("visibility_timeout_seconds", problem, StringComparison.Ordinal);   // among the names it lists
    }

    [Fact]
    public async Task TheCheck_ReportsEachKindOfMistake_AndNothingElse()
    {
        var problems = await ProblemsOfAsync("""
            variable "name" {
              descripton = "misspelt"
              type       = string
            }

            resource "aws_sqs_queu" "typo" {
              name = var.name
            }

            resource "aws_sqs_queue" "input" {
              name = var.name
            }

            resource "aws_lambda_event_source_mapping" "input" {
              event_source_arn    = aws_sqs_queue.input.arn
              function_name       = "ion"
              maximum_concurrency = 2

              scaling_config {
                maximum_concurency = 2
              }
            }

            resource "aws_sns_topic_subscription" "input" {
              topic_arn = aws_sns_topic.missing.arn
              endpoint  = aws_sqs_queue.input.ur1
            }

            data "aws_iam_policy_document" "lambda" {
              dynamic "statement" {
                for_each = var.undeclared
                content {
                  actoins   = ["sqs:SendMessage"]
                  resources = [local.nothing]
                }
              }
            }
            """);

        string[] expected =
        [
            "variable \"name\": no argument or block named \"descripton\"",
            "has no resource type aws_sqs_queu",
            "aws_lambda_event_source_mapping.input: no argument or block named \"maximum_concurrency\"",
            "aws_lambda_event_source_mapping.input scaling_config: no argument or block named \"maximum_concurency\"",
            "aws_sns_topic_subscription.input: the required argument \"protocol\" is missing",
            "aws_sns_topic.missing is not declared",
            "aws_sqs_queue.input has no attribute \"ur1\"",
            "data.aws_iam_policy_document.lambda statement: no argument or block named \"actoins\"",
            "var.undeclared is not a declared variable",
            "local.nothing is not a declared local value",
        ];
        foreach (var fragment in expected)
            Assert.True(problems.Any(p => p.Contains(fragment, StringComparison.Ordinal)), $"not reported: {fragment}\nreported:\n{string.Join("\n", problems)}");
        Assert.True(problems.Count == expected.Length, $"reported {problems.Count}, expected {expected.Length}:\n{string.Join("\n", problems)}");
    }

    [Fact]
    public void TheSchema_IsTheProviderVersionTheModuleRequires()
    {
        var settings = Assert.Single(Module.TerraformSettings);
        Assert.Equal(">= 1.5", (string?)settings["required_version"]);
        var aws = Assert.Single(Blocks(settings, "required_providers"))["aws"]!;
        Assert.Equal("hashicorp/aws", (string?)aws["source"]);
        Assert.Equal("~> 6.0", (string?)aws["version"]);
        // The schema the names are checked against must be one that "~> 6.0" can install.
        Assert.StartsWith("6.", Module.ProviderVersion, StringComparison.Ordinal);
    }

    // --- (b) what ion needs of the resources -------------------------------------------------------------------------

    [Fact]
    public void InputQueue_RedrivesToTheDeadLetterQueue_AfterMaxReceiveCount_50ByDefault()
    {
        var input = Module.Resource("aws_sqs_queue", "input").Body;
        var policy = Text(input["redrive_policy"]);

        var target = Regex.Match(policy, @"deadLetterTargetArn\s*=\s*aws_sqs_queue\.(\w+)\.arn");
        Assert.True(target.Success, $"the redrive policy names no queue's ARN: {policy}");
        Assert.Equal("dead_letters", target.Groups[1].Value);
        Assert.Matches(@"maxReceiveCount\s*=\s*var\.max_receive_count\b", policy);
        Assert.StartsWith("${jsonencode(", policy, StringComparison.Ordinal);

        // High enough that an hour's relay outage never dead-letters by receive count; ion warns below 10.
        var maxReceiveCount = Module.Variables["max_receive_count"];
        Assert.Equal(50, (int)maxReceiveCount["default"]!);
        Assert.Contains("var.max_receive_count >= 10", Text(Single(Blocks(maxReceiveCount, "validation"))["condition"]), StringComparison.Ordinal);
    }

    [Fact]
    public void DeadLetterQueue_TakesRedrivesFromTheInputQueueOnly()
    {
        var allow = Single(Module.OfType("aws_sqs_queue_redrive_allow_policy")).Body;

        Assert.Equal("${aws_sqs_queue.dead_letters.id}", Text(allow["queue_url"]));
        var policy = Text(allow["redrive_allow_policy"]);
        Assert.Matches(@"redrivePermission\s*=\s*""byQueue""", policy);
        Assert.Matches(@"sourceQueueArns\s*=\s*\[aws_sqs_queue\.input\.arn\]", policy);
    }

    [Fact]
    public void BothQueues_KeepMessagesFourteenDays()
    {
        Assert.Equal("${14 * 24 * 60 * 60}", Text(Module.Locals["message_retention_seconds"]));
        foreach (var name in new[] { "input", "dead_letters" })
            Assert.Equal("${local.message_retention_seconds}", Text(Module.Resource("aws_sqs_queue", name).Body["message_retention_seconds"]));
    }

    [Fact]
    public void Topic_DeliversRaw_ToTheInputQueue_WhichOnlyTheTopicMaySendTo()
    {
        var topic = Module.Resource("aws_sns_topic", "mail").Body;
        Assert.Equal("${var.name}", Text(topic["name"]));

        var subscription = Module.Resource("aws_sns_topic_subscription", "input").Body;
        Assert.Equal("${aws_sns_topic.mail.arn}", Text(subscription["topic_arn"]));
        Assert.Equal("sqs", Text(subscription["protocol"]));
        Assert.Equal("${aws_sqs_queue.input.arn}", Text(subscription["endpoint"]));
        Assert.True(subscription["raw_message_delivery"]!.GetValue<bool>());

        var queuePolicy = Module.Resource("aws_sqs_queue_policy", "input").Body;
        Assert.Equal("${aws_sqs_queue.input.id}", Text(queuePolicy["queue_url"]));
        var document = PolicyDocument(Text(queuePolicy["policy"]));
        var statement = Assert.Single(Statements(document));
        Assert.Equal("Allow", Text(statement["effect"]));
        Assert.Equal(["sqs:SendMessage"], Strings(statement["actions"]));
        Assert.Equal(["${aws_sqs_queue.input.arn}"], Strings(statement["resources"]));
        var principal = Single(Blocks(statement, "principals"));
        Assert.Equal("Service", Text(principal["type"]));
        Assert.Equal(["sns.amazonaws.com"], Strings(principal["identifiers"]));
        var condition = Single(Blocks(statement, "condition"));
        Assert.Contains(Text(condition["test"]), new[] { "ArnEquals", "ArnLike" });
        Assert.Equal("aws:SourceArn", Text(condition["variable"]));
        Assert.Equal(["${aws_sns_topic.mail.arn}"], Strings(condition["values"]));
    }

    [Fact]
    public void InputQueue_VisibilityTimeout_IsAtLeastSixTimesTheFunctionTimeout()
    {
        var expression = Expression(Module.Resource("aws_sqs_queue", "input").Body["visibility_timeout_seconds"]);

        var product = Regex.Match(expression, @"(?:(\d+)\s*\*\s*var\.lambda_timeout_seconds|var\.lambda_timeout_seconds\s*\*\s*(\d+))");
        Assert.True(product.Success, $"the visibility timeout does not multiply var.lambda_timeout_seconds: {expression}");
        var factor = int.Parse(product.Groups[1].Success ? product.Groups[1].Value : product.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(factor >= 6, $"the factor is {factor}: {expression}");
        // Nothing may bring it below the product: it stands alone or inside max(…), with only terms added.
        Assert.Matches(@"^(max\(.*\)|\d+\s*\*\s*var\.lambda_timeout_seconds(\s*\+\s*var\.\w+)?)$", expression);
        Assert.DoesNotMatch(@"min\(|-|/|\?", expression);
        // And it stays within SQS's 12 hours: 6 × 900 s plus at most 300 s of batching window.
        Assert.Contains("var.lambda_timeout_seconds <= 900", Text(Single(Blocks(Module.Variables["lambda_timeout_seconds"], "validation"))["condition"]), StringComparison.Ordinal);
        Assert.Contains("var.maximum_batching_window_in_seconds <= 300", Text(Single(Blocks(Module.Variables["maximum_batching_window_in_seconds"], "validation"))["condition"]), StringComparison.Ordinal);
        Assert.Equal(60, (int)Module.Variables["lambda_timeout_seconds"]["default"]!);
    }

    [Fact]
    public void Lambda_IsTheNativeBootstrap_OnProvidedAl2023_WithReservedConcurrency()
    {
        var function = Module.Resource("aws_lambda_function", "ion").Body;

        Assert.Equal("provided.al2023", Text(function["runtime"]));
        Assert.Equal("bootstrap", Text(function["handler"]));
        Assert.Equal(["${var.architecture}"], Strings(function["architectures"]));
        Assert.Equal("arm64", Text(Module.Variables["architecture"]["default"]));
        Assert.Contains("contains([\"arm64\", \"x86_64\"], var.architecture)", Text(Single(Blocks(Module.Variables["architecture"], "validation"))["condition"]), StringComparison.Ordinal);
        Assert.Equal("${var.package_path}", Text(function["filename"]));
        Assert.Equal("${filebase64sha256(var.package_path)}", Text(function["source_code_hash"]));
        Assert.Equal("${var.lambda_timeout_seconds}", Text(function["timeout"]));
        Assert.Equal("${var.lambda_memory_mb}", Text(function["memory_size"]));
        Assert.Equal(256, (int)Module.Variables["lambda_memory_mb"]["default"]!);
        Assert.Equal("${aws_iam_role.lambda.arn}", Text(function["role"]));

        Assert.Equal("${var.reserved_concurrent_executions}", Text(function["reserved_concurrent_executions"]));
        Assert.Equal(2, (int)Module.Variables["reserved_concurrent_executions"]["default"]!);

        var logGroup = Module.Resource("aws_cloudwatch_log_group", "lambda").Body;
        Assert.Equal("/aws/lambda/${var.name}", Text(logGroup["name"]));
        Assert.Equal("${var.log_retention_days}", Text(logGroup["retention_in_days"]));
        Assert.Equal("${aws_cloudwatch_log_group.lambda.name}", Text(Single(Blocks(function, "logging_config"))["log_group"]));
    }

    [Fact]
    public void EventSourceMapping_ReportsBatchItemFailures_WithBoundedConcurrency()
    {
        // The input queue's, and the feedback queue's (FeedbackQueue_…).
        Assert.Equal(["feedback", "input"], Module.OfType("aws_lambda_event_source_mapping").Select(m => m.Name).Order(StringComparer.Ordinal));
        var mapping = Module.Resource("aws_lambda_event_source_mapping", "input").Body;

        Assert.Equal("${aws_sqs_queue.input.arn}", Text(mapping["event_source_arn"]));
        Assert.Equal("${aws_lambda_function.ion.arn}", Text(mapping["function_name"]));
        Assert.Contains("ReportBatchItemFailures", Strings(mapping["function_response_types"]));
        Assert.Equal("${var.batch_size}", Text(mapping["batch_size"]));
        Assert.Equal(10, (int)Module.Variables["batch_size"]["default"]!);
        Assert.Equal("${var.maximum_batching_window_in_seconds}", Text(mapping["maximum_batching_window_in_seconds"]));
        Assert.Equal(1, (int)Module.Variables["maximum_batching_window_in_seconds"]["default"]!);

        Assert.Equal("${var.maximum_concurrency}", Text(Single(Blocks(mapping, "scaling_config"))["maximum_concurrency"]));
        Assert.Contains("var.maximum_concurrency >= 2", Text(Single(Blocks(Module.Variables["maximum_concurrency"], "validation"))["condition"]), StringComparison.Ordinal);
        // Never more pollers than the function may run: a precondition, since validations cannot join two variables
        // before Terraform 1.9.
        var conditions = Blocks(Single(Blocks(mapping, "lifecycle")), "precondition").Select(p => Text(p["condition"])).ToList();
        Assert.Contains(conditions, c => Regex.IsMatch(c, @"var\.maximum_concurrency <= coalesce\(var\.reserved_concurrent_executions, var\.maximum_concurrency\)"));
    }

    [Fact]
    public void Lambda_Environment_IsIonsConfigurationContract()
    {
        var function = Module.Resource("aws_lambda_function", "ion").Body;
        var variables = Text(Single(Blocks(function, "environment"))["variables"]);
        Assert.Equal("${local.lambda_environment}", variables);

        string[] contract =
        [
            "Ion__Store", "Ion__Aws__Region", "Ion__Aws__QueueUrl", "Ion__Aws__DeadLetterQueueUrl", "Ion__Aws__TableName",
            "Ion__Aws__SuppressionTable", "Ion__Aws__TopicArn", "Ion__Aws__FeedbackQueueUrl", "Ion__Aws__EventsTopicArn", "Ion__Aws__PayloadBucket", "Ion__Smtp__Host", "Ion__Smtp__Port", "Ion__Smtp__Security", "Ion__Smtp__Username",
            "Ion__Smtp__PasswordParameter", "Ion__DefaultSender", "Ion__Delivery__MaxAttempts",
            "Ion__Smtp__Fallback__Host", "Ion__Smtp__Fallback__Port", "Ion__Smtp__Fallback__Security", "Ion__Smtp__Fallback__Username",
            "Ion__Smtp__Fallback__PasswordParameter", "Ion__Smtp__Fallback__AfterDeferrals",
        ];
        Assert.Equal(contract.Order(StringComparer.Ordinal), EnvironmentNames("lambda_environment").Order(StringComparer.Ordinal));

        var store = Module.Locals["store_environment"]!.AsObject();
        Assert.Equal("Aws", Text(store["Ion__Store"]));
        Assert.Equal("${aws_sqs_queue.input.url}", Text(store["Ion__Aws__QueueUrl"]));
        Assert.Equal("${aws_sqs_queue.dead_letters.url}", Text(store["Ion__Aws__DeadLetterQueueUrl"]));
        Assert.Equal("${aws_dynamodb_table.log.name}", Text(store["Ion__Aws__TableName"]));
        Assert.Equal("${aws_dynamodb_table.suppressions.name}", Text(store["Ion__Aws__SuppressionTable"]));
        Assert.Equal("${aws_sns_topic.mail.arn}", Text(store["Ion__Aws__TopicArn"]));
        Assert.Equal("${local.region}", Text(store["Ion__Aws__Region"]));

        // Each name is a setting ion has (Ion:Store is read by IonApp; the password parameters by the Lambda).
        Dictionary<string, Type> sections = new()
        {
            ["Aws"] = typeof(AwsOptions), ["Smtp"] = typeof(SmtpOptions), ["Delivery"] = typeof(DeliveryOptions), ["Smtp__Fallback"] = typeof(FallbackRelayOptions),
        };
        foreach (var name in contract.Except(["Ion__Store", "Ion__Smtp__PasswordParameter", "Ion__Smtp__Fallback__PasswordParameter"]))
        {
            var parts = name.Split("__");
            var type = parts.Length == 2 ? typeof(IonOptions) : sections[string.Join("__", parts[1..^1])];
            Assert.True(type.GetProperty(parts[^1]) is not null, $"{name}: {type.Name} has no property {parts[^1]}");
        }

        // The security values the module accepts are ones ion's SmtpSecurity has.
        var security = Module.Variables["smtp_security"];
        Assert.Equal(nameof(SmtpSecurity.StartTls), Text(security["default"]));
        var allowed = Regex.Matches(Text(Single(Blocks(security, "validation"))["condition"]), "\"(\\w+)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(allowed);
        Assert.All(allowed, value => Assert.Contains(value, Enum.GetNames<SmtpSecurity>()));
        Assert.Equal(5, (int)Module.Variables["max_attempts"]["default"]!);
    }

    [Fact]
    public void SmtpPassword_IsASecureStringParameter_NeverAnEnvironmentVariableOrAnOutput()
    {
        var parameter = Module.Resource("aws_ssm_parameter", "smtp_password").Body;
        Assert.Equal("SecureString", Text(parameter["type"]));
        Assert.Equal("${var.smtp_password}", Text(parameter["value"]));
        Assert.Equal("${var.create_smtp_password_parameter ? 1 : 0}", Text(parameter["count"]));
        Assert.False(Module.Variables["create_smtp_password_parameter"]["default"]!.GetValue<bool>());

        var password = Module.Variables["smtp_password"];
        Assert.True(password["sensitive"]!.GetValue<bool>());
        Assert.Null(password["default"]);

        // The variable goes into the parameter and nowhere else, and nothing reads the parameter's value back.
        var uses = Module.Expressions().Where(e => Regex.IsMatch(e.Expression, @"\bvar\.smtp_password\b")).Select(e => e.Where).Distinct().ToList();
        Assert.Equal(["lambda.tf: aws_ssm_parameter.smtp_password"], uses);
        Assert.DoesNotContain(Module.Expressions(), e => Regex.IsMatch(e.Expression, @"aws_ssm_parameter\.\w+(\[[^\]]*\])?\.(value|insecure_value|value_wo)\b"));

        // The function gets the parameter's name, never a password.
        var names = EnvironmentNames("lambda_environment");
        Assert.DoesNotContain(names, n => n.Contains("Password", StringComparison.Ordinal) && n is not "Ion__Smtp__PasswordParameter" and not "Ion__Smtp__Fallback__PasswordParameter");
        Assert.Matches(@"Ion__Smtp__PasswordParameter\s*=\s*local\.password_parameter_name\b", Text(Module.Locals["lambda_environment"]));

        // No output reaches anything about the password, through locals included.
        foreach (var (name, output) in Module.Outputs)
        {
            var reached = Reachable(Text(output["value"]));
            Assert.DoesNotContain("password", reached, StringComparison.OrdinalIgnoreCase);
            Assert.False(output["sensitive"]?.GetValue<bool>() ?? false, $"output {name} is sensitive: nothing secret should be an output");
        }
    }

    [Fact]
    public void Alarms_BacklogOldestMessageDeadLettersAndErrors_NotifyTheAlarmTopic()
    {
        var topic = Module.Resource("aws_sns_topic", "alarms").Body;
        Assert.Equal("${var.name}-alarms", Text(topic["name"]));
        var email = Module.Resource("aws_sns_topic_subscription", "alarm_email").Body;
        Assert.Equal("${var.alarm_email == null ? 0 : 1}", Text(email["count"]));
        Assert.Equal("email", Text(email["protocol"]));
        Assert.Equal("${var.alarm_email}", Text(email["endpoint"]));
        Assert.Equal("${aws_sns_topic.alarms.arn}", Text(email["topic_arn"]));
        Assert.Null(Module.Variables["alarm_email"]["default"]);

        (string Namespace, string Metric, string Dimension, string Of, string Threshold)[] expected =
        [
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${aws_sqs_queue.input.name}", "${var.backlog_alarm_threshold}"),
            ("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", "${aws_sqs_queue.input.name}", "${var.oldest_message_alarm_seconds}"),
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${aws_sqs_queue.dead_letters.name}", "0"),
            ("AWS/Lambda", "Errors", "FunctionName", "${aws_lambda_function.ion.function_name}", "0"),
        ];
        var alarms = Module.OfType("aws_cloudwatch_metric_alarm").Select(a => a.Body).ToList();
        Assert.Equal(expected.Length, alarms.Count);
        foreach (var (ns, metric, dimension, of, threshold) in expected)
        {
            var alarm = Assert.Single(alarms, a => Text(a["namespace"]) == ns && Text(a["metric_name"]) == metric && Text(a["dimensions"]?[dimension]) == of);
            Assert.Equal(threshold, Text(alarm["threshold"]));
            Assert.Equal("GreaterThanThreshold", Text(alarm["comparison_operator"]));
            Assert.Equal(["${aws_sns_topic.alarms.arn}"], Strings(alarm["alarm_actions"]));
            Assert.Equal(["${aws_sns_topic.alarms.arn}"], Strings(alarm["ok_actions"]));
            Assert.Equal("notBreaching", Text(alarm["treat_missing_data"]));
            Assert.NotNull(alarm["statistic"]);
            Assert.NotNull(alarm["period"]);
            Assert.NotNull(alarm["evaluation_periods"]);
        }
    }

    [Fact]
    public void Iam_GrantsExactlyWhatIonCalls_OnItsOwnResources_WithoutWildcards()
    {
        // Every policy attached is one of the checked documents.
        foreach (var policy in Module.OfType("aws_iam_role_policy").Concat(Module.OfType("aws_iam_policy")))
            Assert.Matches(@"^\$\{data\.aws_iam_policy_document\.\w+(\[0\])?\.json\}$", Text(policy.Body["policy"]));
        var rolePolicy = Module.Resource("aws_iam_role_policy", "lambda").Body;
        Assert.Equal("${aws_iam_role.lambda.id}", Text(rolePolicy["role"]));
        Assert.Equal("${data.aws_iam_policy_document.lambda.json}", Text(rolePolicy["policy"]));
        var assume = Single(Statements(Module.Data("aws_iam_policy_document", "lambda_assume").Body));
        Assert.Equal(["lambda.amazonaws.com"], Strings(Single(Blocks(assume, "principals"))["identifiers"]));

        var documents = Module.DataSources.Where(d => d.Type == "aws_iam_policy_document").ToList();
        Assert.True(documents.Count >= 4, "the policy documents were not found");
        foreach (var document in documents)
        {
            foreach (var statement in Statements(document.Body))
            {
                Assert.DoesNotContain(Strings(statement["actions"]), a => a.Contains('*', StringComparison.Ordinal));
                Assert.DoesNotContain("*", Strings(statement["resources"]));
                Assert.Null(statement["not_actions"]);
                Assert.Null(statement["not_resources"]);
                Assert.NotEmpty(Strings(statement["actions"]));
                // A trust policy names principals, not resources; every other statement names its resources.
                if (statement["principals"] is null)
                    Assert.NotEmpty(Strings(statement["resources"]));
            }
        }

        var lambda = Statements(Module.Data("aws_iam_policy_document", "lambda").Body).ToList();
        Grants(lambda, "${aws_sqs_queue.input.arn}", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:SendMessage");
        Grants(lambda, "${aws_sqs_queue.dead_letters.arn}", "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes");
        Grants(lambda, "${aws_dynamodb_table.log.arn}", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query");
        Grants(lambda, "${aws_dynamodb_table.log.arn}/index/dead_letters", "dynamodb:Query");
        // The suppression list: the lookup, the adds, and a streak's undoing (a scan and deletes); no listing.
        Grants(lambda, "${aws_dynamodb_table.suppressions.arn}", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Scan");
        Grants(lambda, "${aws_cloudwatch_log_group.lambda.arn}:*", "logs:CreateLogStream", "logs:PutLogEvents");
        // The SMTP password and its key, the feedback queue (FeedbackQueue_…), the events topic (EventsTopic_…) and the
        // payload bucket (PayloadBucket_…: its objects, and the bucket), and the fallback relay's password
        // (FallbackRelay_…), each when there is one.
        Assert.Equal(13, lambda.Count);

        var parameters = lambda.Where(s => Strings(s["actions"]).SequenceEqual(["ssm:GetParameter"])).ToList();
        Assert.Equal(2, parameters.Count);
        Assert.All(parameters, p => Assert.Equal(["${statement.value}"], Strings(p["resources"])));
        var key = Assert.Single(lambda, s => Strings(s["actions"]).SequenceEqual(["kms:Decrypt"]));
        Assert.Equal(["${statement.value}"], Strings(key["resources"]));
        var viaSsm = Single(Blocks(key, "condition"));
        Assert.Equal("StringEquals", Text(viaSsm["test"]));
        Assert.Equal("kms:ViaService", Text(viaSsm["variable"]));
        Assert.Equal(["ssm.${local.region}.amazonaws.com"], Strings(viaSsm["values"]));
        var dynamics = Module.Data("aws_iam_policy_document", "lambda").Body["dynamic"]!["statement"]!.AsArray().Select(d => Text(d!["for_each"])).ToList();
        Assert.Contains(dynamics, d => d.EndsWith("[local.password_parameter_arn]}", StringComparison.Ordinal));
        Assert.Contains(dynamics, d => d.EndsWith("[local.password_key_arn]}", StringComparison.Ordinal));
        Assert.Matches(@":parameter/\$\{trimprefix\(local\.password_parameter_name, ""/""\)\}""?\}?$", Text(Module.Locals["password_parameter_arn"]));
        Assert.Equal("alias/aws/ssm", Text(Module.Data("aws_kms_alias", "ssm").Body["name"]));
    }

    [Fact]
    public void WorkerPolicy_GrantsWhatTheReadmeSaysAWorkerNeeds()
    {
        var readme = File.ReadAllText(Path.Combine(TerraformFixture.RepositoryRoot, "README.md"));
        var json = Regex.Matches(readme, "```json\n(.*?)```", RegexOptions.Singleline).Select(m => m.Groups[1].Value).Single(j => j.Contains("\"Statement\"", StringComparison.Ordinal));
        using var policy = JsonDocument.Parse(json);
        var needed = policy.RootElement.GetProperty("Statement").EnumerateArray()
            .SelectMany(s => s.GetProperty("Action").EnumerateArray().Select(a => a.GetString()!)).ToHashSet();

        var worker = Statements(Module.Data("aws_iam_policy_document", "worker").Body).ToList();
        Assert.Equal(needed.Order(StringComparer.Ordinal), worker.SelectMany(s => Strings(s["actions"])).Distinct().Order(StringComparer.Ordinal));
        Assert.Equal("${var.create_worker_policy ? 1 : 0}", Text(Module.Resource("aws_iam_policy", "worker").Body["count"]));
        Assert.Equal("${one(aws_iam_policy.worker[*].arn)}", Text(Module.Outputs["worker_policy_arn"]["value"]));
    }

    [Fact]
    public void Table_IsOnDemand_WithTheDeadLettersIndexIonQueries_AndTheTtl()
    {
        var table = Module.Resource("aws_dynamodb_table", "log").Body;

        Assert.Equal("PAY_PER_REQUEST", Text(table["billing_mode"]));
        Assert.Equal("id", Text(table["hash_key"]));
        Assert.Equal(
            [("dead_pk", "S"), ("dead_sk", "S"), ("id", "S")],
            Blocks(table, "attribute").Select(a => (Text(a["name"]), Text(a["type"]))).Order());

        var index = Single(Blocks(table, "global_secondary_index"));
        Assert.Equal("dead_letters", Text(index["name"]));
        Assert.Equal("dead_pk", Text(index["hash_key"]));
        Assert.Equal("dead_sk", Text(index["range_key"]));
        Assert.Equal("INCLUDE", Text(index["projection_type"]));
        // What ion's own provisioning projects (DynamoDbDeliveryLog), so a listing of dead letters reads the index alone.
        var projected = (List<string>)typeof(DynamoDbDeliveryLog).GetField("DeadIndexAttributes", BindingFlags.NonPublic | BindingFlags.Static)!.GetValue(null)!;
        Assert.Equal(["body", "last_reason", "failure_class", "attempts_used", "created_at", "updated_at", "recipients", "dead_domains"], projected);
        Assert.Equal(projected, Strings(index["non_key_attributes"]));

        var ttl = Single(Blocks(table, "ttl"));
        Assert.Equal("expires_at", Text(ttl["attribute_name"]));
        Assert.True(ttl["enabled"]!.GetValue<bool>());
        Assert.Equal("${var.point_in_time_recovery}", Text(Single(Blocks(table, "point_in_time_recovery"))["enabled"]));
        Assert.True(Module.Variables["point_in_time_recovery"]["default"]!.GetValue<bool>());
    }

    [Fact]
    public void SuppressionTable_IsOnDemand_KeyedByAddress_WithTheIndexIonListsFrom_AndTheTtl()
    {
        var table = Module.Resource("aws_dynamodb_table", "suppressions").Body;

        Assert.Equal("${var.name}-suppressions", Text(table["name"]));
        Assert.Equal("PAY_PER_REQUEST", Text(table["billing_mode"]));
        Assert.Equal("address_key", Text(table["hash_key"]));
        Assert.Equal(
            [("address_key", "S"), ("list_pk", "S")],
            Blocks(table, "attribute").Select(a => (Text(a["name"]), Text(a["type"]))).Order());

        // What ion's own provisioning creates (DynamoDbSuppressionList.CreateTableAsync).
        var index = Single(Blocks(table, "global_secondary_index"));
        Assert.Equal("by_address", Text(index["name"]));
        Assert.Equal("list_pk", Text(index["hash_key"]));
        Assert.Equal("address_key", Text(index["range_key"]));
        Assert.Equal("ALL", Text(index["projection_type"]));

        var ttl = Single(Blocks(table, "ttl"));
        Assert.Equal("expires_at", Text(ttl["attribute_name"]));
        Assert.True(ttl["enabled"]!.GetValue<bool>());
        Assert.Equal("${var.point_in_time_recovery}", Text(Single(Blocks(table, "point_in_time_recovery"))["enabled"]));

        var worker = Statements(Module.Data("aws_iam_policy_document", "worker").Body).ToList();
        var suppressions = Assert.Single(worker, s => Strings(s["resources"]).Any(r => r.StartsWith("${aws_dynamodb_table.suppressions.arn}", StringComparison.Ordinal)));
        Assert.Equal(["${aws_dynamodb_table.suppressions.arn}", "${aws_dynamodb_table.suppressions.arn}/index/by_address"], Strings(suppressions["resources"]));
        Assert.Equal(["dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan"],
            Strings(suppressions["actions"]).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void EventsTopic_IsOptional_AndEachWebhookHasAQueueOnItWithRawDelivery_AndItsDeadLetters_ReadByTheWorkers()
    {
        Assert.False(Module.Variables["create_events_topic"]["default"]!.GetValue<bool>());
        Assert.Empty(Module.Variables["webhooks"]["default"]!.AsArray());
        Assert.Equal("${var.create_events_topic || length(var.webhooks) > 0}", Text(Module.Locals["events_topic"]));
        Assert.Equal("${local.events_topic ? 1 : 0}", Text(Module.Resource("aws_sns_topic", "events").Body["count"]));
        Assert.Equal("${var.name}-events", Text(Module.Resource("aws_sns_topic", "events").Body["name"]));
        foreach (var (type, name) in new[] { ("aws_sqs_queue", "webhook"), ("aws_sqs_queue", "webhook_dead"), ("aws_sqs_queue_policy", "webhook"), ("aws_sns_topic_subscription", "webhook") })
            Assert.Equal("${toset(var.webhooks)}", Text(Module.Resource(type, name).Body["for_each"]));

        var queue = Module.Resource("aws_sqs_queue", "webhook").Body;
        Assert.Equal("${var.name}-webhook-${each.key}", Text(queue["name"]));
        Assert.Contains("aws_sqs_queue.webhook_dead[each.key].arn", Text(queue["redrive_policy"]), StringComparison.Ordinal);
        Assert.Equal("${local.message_retention_seconds}", Text(queue["message_retention_seconds"]));
        Assert.Equal("${var.name}-webhook-${each.key}-dead", Text(Module.Resource("aws_sqs_queue", "webhook_dead").Body["name"]));
        var subscription = Module.Resource("aws_sns_topic_subscription", "webhook").Body;
        Assert.Equal("${aws_sns_topic.events[0].arn}", Text(subscription["topic_arn"]));
        Assert.Equal("${aws_sqs_queue.webhook[each.key].arn}", Text(subscription["endpoint"]));
        Assert.True(subscription["raw_message_delivery"]!.GetValue<bool>());
        var sends = Single(Statements(Module.Data("aws_iam_policy_document", "events_topic_to_webhook").Body));
        Assert.Equal(["sqs:SendMessage"], Strings(sends["actions"]));
        Assert.Equal(["${aws_sns_topic.events[0].arn}"], Strings(Single(Blocks(sends, "condition"))["values"]));

        // Both publish; only the workers read the webhooks' queues.
        Assert.Contains("one(aws_sns_topic.events[*].arn)", Text(Module.Locals["optional_environment"]), StringComparison.Ordinal);
        Assert.Contains("Ion__Aws__EventsTopicArn", EnvironmentNames("lambda_environment"));
        Assert.DoesNotContain("WebhookQueueUrls", Text(Module.Locals["lambda_environment"]), StringComparison.Ordinal);
        var lambda = Module.Data("aws_iam_policy_document", "lambda").Body["dynamic"]!["statement"]!.AsArray();
        var publish = Assert.Single(lambda, d => Text(d!["for_each"]) == "${aws_sns_topic.events[*].arn}")!;
        Assert.Equal(["sns:Publish"], Strings(Single(Blocks(publish.AsObject(), "content"))["actions"]));
        // (The payload bucket's two statements, on its objects and on itself, share their for_each: PayloadBucket_… checks them.)
        var worker = Module.Data("aws_iam_policy_document", "worker").Body["dynamic"]!["statement"]!.AsArray()
            .Where(d => Text(d!["for_each"]) != "${aws_s3_bucket.payloads[*].arn}")
            .ToDictionary(d => Text(d!["for_each"]), d => Single(Blocks(d!.AsObject(), "content")));
        Assert.Equal(["sns:GetTopicAttributes", "sns:Publish"], Strings(worker["${aws_sns_topic.events[*].arn}"]["actions"]).Order(StringComparer.Ordinal));
        Assert.Equal(["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
            Strings(worker["${aws_sqs_queue.webhook}"]["actions"]).Order(StringComparer.Ordinal));
        Assert.Equal(["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"], Strings(worker["${aws_sqs_queue.webhook_dead}"]["actions"]).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void PayloadBucket_IsOptional_Private_ExpiresWhatIsLeftWithTheQueues_AndIsReadByBoth_WrittenByTheWorkersOnly()
    {
        Assert.False(Module.Variables["create_payload_bucket"]["default"]!.GetValue<bool>());
        foreach (var type in new[] { "aws_s3_bucket", "aws_s3_bucket_public_access_block", "aws_s3_bucket_lifecycle_configuration" })
            Assert.Equal("${var.create_payload_bucket ? 1 : 0}", Text(Module.Resource(type, "payloads").Body["count"]));
        // ion aws provision's name: S3's names are global.
        Assert.Equal("${var.name}-payloads-${data.aws_caller_identity.current.account_id}-${local.region}",
            Text(Module.Resource("aws_s3_bucket", "payloads").Body["bucket"]));
        var block = Module.Resource("aws_s3_bucket_public_access_block", "payloads").Body;
        foreach (var setting in new[] { "block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets" })
            Assert.True(block[setting]!.GetValue<bool>(), setting);
        var rule = Single(Blocks(Module.Resource("aws_s3_bucket_lifecycle_configuration", "payloads").Body, "rule"));
        Assert.Equal("Enabled", Text(rule["status"]));
        Assert.Equal("${local.message_retention_seconds / 86400}", Text(Single(Blocks(rule, "expiration"))["days"]));

        Assert.Contains("one(aws_s3_bucket.payloads[*].bucket)", Text(Module.Locals["optional_environment"]), StringComparison.Ordinal);
        Assert.Contains("Ion__Aws__PayloadBucket", EnvironmentNames("lambda_environment"));
        Assert.Equal("${one(aws_s3_bucket.payloads[*].bucket)}", Text(Module.Outputs["payload_bucket"]["value"]));

        Dictionary<string, string[]> Grants(string document) =>
            Module.Data("aws_iam_policy_document", document).Body["dynamic"]!["statement"]!.AsArray()
                .Where(d => Text(d!["for_each"]) == "${aws_s3_bucket.payloads[*].arn}")
                .Select(d => Single(Blocks(d!.AsObject(), "content")))
                .ToDictionary(c => Strings(c["resources"]).Single(), c => Strings(c["actions"]).Order(StringComparer.Ordinal).ToArray());
        // The Lambda only reads and deletes (it never publishes); the workers also put (the API, ion publish).
        Assert.Equal(new Dictionary<string, string[]> { ["${statement.value}/*"] = ["s3:DeleteObject", "s3:GetObject"], ["${statement.value}"] = ["s3:ListBucket"] },
            Grants("lambda"));
        Assert.Equal(new Dictionary<string, string[]> { ["${statement.value}/*"] = ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"], ["${statement.value}"] = ["s3:ListBucket"] },
            Grants("worker"));
    }

    [Fact]
    public void FallbackRelay_IsOptional_ItsSettingsReachTheFunctionOnlyWithItsHost_AndItsPasswordParameterIsReadable()
    {
        Assert.Null(Module.Variables["smtp_fallback_host"]["default"]);
        Assert.Equal(587, Module.Variables["smtp_fallback_port"]["default"]!.GetValue<int>());
        Assert.Equal("StartTls", Module.Variables["smtp_fallback_security"]["default"]!.GetValue<string>());
        // Without a host, no fallback setting at all: its port and security have defaults, which must not make one.
        var environment = Text(Module.Locals["lambda_environment"]);
        foreach (var key in new[] { "Port", "Security", "Username", "PasswordParameter", "AfterDeferrals" })
            Assert.Matches($@"Ion__Smtp__Fallback__{key} *= var\.smtp_fallback_host == null (\|\| [^?]+)?\? null", environment);
        Assert.Contains("Ion__Smtp__Fallback__Host              = var.smtp_fallback_host", environment, StringComparison.Ordinal);

        Assert.Contains("local.password_parameter_arn, local.fallback_password_parameter_arn", Text(Module.Locals["password_parameter_arns"]), StringComparison.Ordinal);
        Assert.Contains(":parameter/${trimprefix(var.smtp_fallback_password_parameter_name, \"/\")}", Text(Module.Locals["fallback_password_parameter_arn"]), StringComparison.Ordinal);
        var dynamics = Module.Data("aws_iam_policy_document", "lambda").Body["dynamic"]!["statement"]!.AsArray();
        var read = Assert.Single(dynamics, d => Text(d!["for_each"]).EndsWith("[local.fallback_password_parameter_arn]}", StringComparison.Ordinal))!;
        Assert.Equal(["ssm:GetParameter"], Strings(Single(Blocks(read.AsObject(), "content"))["actions"]));
        // The key decrypts either password; AWS's own SSM key is looked up when either is there.
        Assert.Contains(dynamics, d => Text(d!["for_each"]) == "${length(local.password_parameter_arns) == 0 ? [] : [local.password_key_arn]}");
        Assert.Contains("length(local.password_parameter_arns) > 0", Text(Module.Data("aws_kms_alias", "ssm").Body["count"]), StringComparison.Ordinal);
        var conditions = Blocks(Single(Blocks(Module.Resource("aws_lambda_function", "ion").Body, "lifecycle")), "precondition")
            .Select(p => Text(p["condition"])).ToList();
        Assert.Contains("${var.smtp_fallback_host == null || var.smtp_fallback_username == null || var.smtp_fallback_password_parameter_name != null}", conditions);
    }

    [Fact]
    public void FeedbackQueue_IsOptional_SubscribedWithTheEnvelope_ToATopicSesMayPublishTo_AndReadByTheLambdasSecondMapping()
    {
        Assert.False(Module.Variables["create_feedback_queue"]["default"]!.GetValue<bool>());
        Assert.Null(Module.Variables["feedback_topic_arn"]["default"]);
        Assert.Equal("${var.create_feedback_queue || var.feedback_topic_arn != null}", Text(Module.Locals["feedback_queue"]));
        Assert.Equal("${var.feedback_topic_arn != null ? var.feedback_topic_arn : one(aws_sns_topic.feedback[*].arn)}", Text(Module.Locals["feedback_topic_arn"]));
        foreach (var (type, name) in new[] { ("aws_sqs_queue", "feedback"), ("aws_sqs_queue_policy", "feedback"), ("aws_sns_topic_subscription", "feedback") })
            Assert.Equal("${local.feedback_queue ? 1 : 0}", Text(Module.Resource(type, name).Body["count"]));
        // The module's own topic only when none is given.
        foreach (var (type, name) in new[] { ("aws_sns_topic", "feedback"), ("aws_sns_topic_policy", "feedback") })
            Assert.Equal("${var.feedback_topic_arn == null && var.create_feedback_queue ? 1 : 0}", Text(Module.Resource(type, name).Body["count"]));

        var queue = Module.Resource("aws_sqs_queue", "feedback").Body;
        Assert.Equal("${var.name}-feedback", Text(queue["name"]));
        Assert.Equal("${local.message_retention_seconds}", Text(queue["message_retention_seconds"]));
        Assert.Null(queue["redrive_policy"]);
        // Lambda refuses a mapping to a queue whose visibility timeout is below the function's timeout.
        Assert.Equal("${6 * var.lambda_timeout_seconds}", Text(queue["visibility_timeout_seconds"]));

        var subscription = Module.Resource("aws_sns_topic_subscription", "feedback").Body;
        Assert.Equal("${local.feedback_topic_arn}", Text(subscription["topic_arn"]));
        Assert.Equal("sqs", Text(subscription["protocol"]));
        Assert.Equal("${aws_sqs_queue.feedback[0].arn}", Text(subscription["endpoint"]));
        Assert.False(subscription["raw_message_delivery"]!.GetValue<bool>());

        // Only that topic sends to the queue, and only SES (for this account) publishes to the module's topic.
        var queuePolicy = Module.Resource("aws_sqs_queue_policy", "feedback").Body;
        Assert.Equal("${aws_sqs_queue.feedback[0].id}", Text(queuePolicy["queue_url"]));
        Assert.Equal("${data.aws_iam_policy_document.feedback_topic_to_queue[0].json}", Text(queuePolicy["policy"]));
        var sends = Single(Statements(Module.Data("aws_iam_policy_document", "feedback_topic_to_queue").Body));
        Assert.Equal(["sqs:SendMessage"], Strings(sends["actions"]));
        Assert.Equal(["${aws_sqs_queue.feedback[0].arn}"], Strings(sends["resources"]));
        Assert.Equal(["sns.amazonaws.com"], Strings(Single(Blocks(sends, "principals"))["identifiers"]));
        Assert.Equal(["${local.feedback_topic_arn}"], Strings(Single(Blocks(sends, "condition"))["values"]));
        var topicPolicy = Module.Resource("aws_sns_topic_policy", "feedback").Body;
        Assert.Equal("${aws_sns_topic.feedback[0].arn}", Text(topicPolicy["arn"]));
        var publishes = Single(Statements(Module.Data("aws_iam_policy_document", "ses_to_feedback_topic").Body));
        Assert.Equal(["sns:Publish"], Strings(publishes["actions"]));
        Assert.Equal(["ses.amazonaws.com"], Strings(Single(Blocks(publishes, "principals"))["identifiers"]));
        var account = Single(Blocks(publishes, "condition"));
        Assert.Equal("aws:SourceAccount", Text(account["variable"]));
        Assert.Equal(["${data.aws_caller_identity.current.account_id}"], Strings(account["values"]));

        // The Lambda reads it through a mapping of its own, only when there is a queue, answering per record.
        var mapping = Module.Resource("aws_lambda_event_source_mapping", "feedback").Body;
        Assert.Equal("${local.feedback_queue ? 1 : 0}", Text(mapping["count"]));
        Assert.Equal("${aws_sqs_queue.feedback[0].arn}", Text(mapping["event_source_arn"]));
        Assert.Equal("${aws_lambda_function.ion.arn}", Text(mapping["function_name"]));
        Assert.Equal(["ReportBatchItemFailures"], Strings(mapping["function_response_types"]));
        Assert.Equal(10, (int)mapping["batch_size"]!);
        Assert.Equal(2, (int)Single(Blocks(mapping, "scaling_config"))["maximum_concurrency"]!);
        Assert.Equal(["${aws_iam_role_policy.lambda}"], Strings(mapping["depends_on"]));
        // Both mappings fit in the reserved concurrency, or a throttled batch of mail costs its messages a receive.
        var fits = Text(Single(Blocks(Single(Blocks(mapping, "lifecycle")), "precondition"))["condition"]);
        Assert.Equal("${var.maximum_concurrency + 2 <= coalesce(var.reserved_concurrent_executions, var.maximum_concurrency + 2)}", fits);
        // It knows the queue's records by the queue's URL.
        Assert.Contains("Ion__Aws__FeedbackQueueUrl", EnvironmentNames("lambda_environment"));
        Assert.Contains("one(aws_sqs_queue.feedback[*].url)", Text(Module.Locals["optional_environment"]), StringComparison.Ordinal);
        // The function's role lets the mapping receive, delete and read attributes (what AWS's SQS execution role
        // grants); ion itself calls nothing on the queue, so nothing more.
        FeedbackStatement("lambda", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes");

        // Workers may read it too (what FeedbackQueueReader and the start check call).
        FeedbackStatement("worker", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes");
    }

    /// <summary>The policy document's statement on the feedback queue, one per queue (none without).</summary>
    private void FeedbackStatement(string document, params string[] actions)
    {
        var dynamic = Assert.Single(Module.Data("aws_iam_policy_document", document).Body["dynamic"]!["statement"]!.AsArray(),
            d => Text(d!["for_each"]) == "${aws_sqs_queue.feedback[*].arn}")!.AsObject();
        var content = Single(Blocks(dynamic, "content"));
        Assert.Equal(["${statement.value}"], Strings(content["resources"]));
        Assert.Equal(actions.Order(StringComparer.Ordinal), Strings(content["actions"]).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Outputs_AreTheOnesTheReadmeDocuments_AndTheWorkerEnvironmentIsTheStoreSettings()
    {
        string[] outputs =
        [
            "topic_arn", "queue_url", "queue_arn", "dead_letter_queue_url", "dead_letter_queue_arn", "table_name", "suppression_table_name", "function_name",
            "log_group_name", "alarm_topic_arn", "worker_environment", "worker_policy_arn", "feedback_queue_url", "feedback_topic_arn",
            "events_topic_arn", "webhook_queue_urls", "payload_bucket",
        ];
        Assert.Equal(outputs.Order(StringComparer.Ordinal), Module.Outputs.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("${local.worker_environment}", Text(Module.Outputs["worker_environment"]["value"]));
        Assert.All(EnvironmentNames("worker_environment"), n => Assert.Matches(@"^Ion__(Store|Aws__\w+)$", n));
        // The store's settings, the feedback queue, the events topic and the payload bucket (which the Lambda gets too,
        // lambda_environment), and the webhooks' queues, by name.
        Assert.Equal(EnvironmentNames("store_environment").Concat(["Ion__Aws__FeedbackQueueUrl", "Ion__Aws__EventsTopicArn", "Ion__Aws__PayloadBucket"]).Order(StringComparer.Ordinal),
            EnvironmentNames("worker_environment").Order(StringComparer.Ordinal));
        Assert.Contains("\"Ion__Aws__WebhookQueueUrls__${webhook}\" => queue.url", Text(Module.Locals["worker_environment"]), StringComparison.Ordinal);

        var readme = File.ReadAllText(Path.Combine(TerraformFixture.ModuleDirectory, "README.md"));
        foreach (var name in outputs.Concat(Module.Variables.Keys))
            Assert.Contains($"`{name}`", readme, StringComparison.Ordinal);
    }

    // --- (c) variables ------------------------------------------------------------------------------------------------

    [Fact]
    public void EveryVariable_HasADescriptionAndAType_AndEveryOutputADescription()
    {
        foreach (var config in new[] { Module, terraform.Example })
        {
            Assert.NotEmpty(config.Variables);
            foreach (var (name, variable) in config.Variables)
            {
                Assert.False(string.IsNullOrWhiteSpace((string?)variable["description"]), $"{config.Directory}: variable {name} has no description");
                Assert.Matches(@"^\$\{.+\}$", (string?)variable["type"] ?? $"variable {name} has no type");
            }
            foreach (var (name, output) in config.Outputs)
                Assert.False(string.IsNullOrWhiteSpace((string?)output["description"]), $"{config.Directory}: output {name} has no description");
        }
    }

    // --- helpers ------------------------------------------------------------------------------------------------------

    private static async Task<List<string>> ProblemsOfAsync(string hcl)
    {
        var directory = Directory.CreateTempSubdirectory("ion-terraform-");
        try
        {
            await File.WriteAllTextAsync(Path.Combine(directory.FullName, "main.tf"), hcl, Token);
            return (await TerraformConfig.LoadAsync(directory.FullName, Token)).Problems();
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>The statements of a policy document, those written by <c>dynamic "statement"</c> included.</summary>
    private static IEnumerable<JsonObject> Statements(JsonObject document) =>
        Blocks(document, "statement").Concat(
            document["dynamic"]?["statement"] is JsonArray dynamics ? dynamics.SelectMany(d => Blocks(d!.AsObject(), "content")) : []);

    private JsonObject PolicyDocument(string reference)
    {
        var name = Regex.Match(reference, @"^\$\{data\.aws_iam_policy_document\.(\w+)\.json\}$");
        Assert.True(name.Success, $"not a policy document's JSON: {reference}");
        return Module.Data("aws_iam_policy_document", name.Groups[1].Value).Body;
    }

    private static void Grants(List<JsonObject> statements, string resource, params string[] actions)
    {
        var statement = Assert.Single(statements, s => Strings(s["resources"]).SequenceEqual([resource]));
        Assert.Equal(actions.Order(StringComparer.Ordinal), Strings(statement["actions"]).Order(StringComparer.Ordinal));
    }

    /// <summary>The <c>Ion__…</c> names a local's map defines, following the locals it merges.</summary>
    private List<string> EnvironmentNames(string local)
    {
        var value = Module.Locals[local];
        if (value is JsonObject map)
            return [.. map.Select(p => p.Key)];
        var text = Text(value);
        List<string> names = [.. Regex.Matches(text, @"\b(Ion__\w+)\s*=").Select(m => m.Groups[1].Value)];
        foreach (Match merged in Regex.Matches(text, @"\blocal\.(\w+)"))
        {
            if (merged.Groups[1].Value != local && Module.Locals.ContainsKey(merged.Groups[1].Value))
                names.AddRange(EnvironmentNames(merged.Groups[1].Value));
        }
        return names;
    }

    /// <summary>An expression with the expressions of the locals it uses, transitively.</summary>
    private string Reachable(string expression)
    {
        var seen = new HashSet<string>();
        var text = expression;
        for (var added = true; added;)
        {
            added = false;
            foreach (Match m in Regex.Matches(text, @"\blocal\.(\w+)"))
            {
                if (seen.Add(m.Groups[1].Value))
                {
                    text += "\n" + string.Join("\n", TerraformConfig.Strings(Module.Locals[m.Groups[1].Value]));
                    added = true;
                }
            }
        }
        return text;
    }

    private static string Text(JsonNode? node) => node is JsonValue value && value.TryGetValue<string>(out var text) ? text : node?.ToJsonString() ?? "";

    /// <summary>A whole-expression string without its <c>${ }</c>.</summary>
    private static string Expression(JsonNode? node)
    {
        var text = Text(node);
        Assert.Matches(@"^\$\{.*\}$", text);
        return text[2..^1];
    }

    private static List<string> Strings(JsonNode? node) => node is JsonArray array ? [.. array.Select(Text)] : [];

    private static JsonObject Single(IEnumerable<JsonObject> blocks) => Assert.Single(blocks);

    private static Block Single(IEnumerable<Block> blocks) => Assert.Single(blocks);
}
