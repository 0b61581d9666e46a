using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Ion.Tests.Fixtures;

namespace Ion.Tests.Deploy;

/// <summary>
/// A Terraform directory read without Terraform, which these machines do not have: tools/terraform-check.mjs turns
/// each .tf file into JSON with hcl2json (expressions stay strings, <c>"${var.name}"</c>) and extracts, for each AWS
/// type used, the arguments and nested blocks the npm package @cdktf/provider-aws declares (it is generated from the
/// hashicorp/aws provider's schema). <see cref="Problems"/> then finds what <c>terraform validate</c> would refuse:
/// an unknown type, argument or block, a missing required argument, a reference to nothing.
/// </summary>
public sealed partial class TerraformConfig
{
    /// <summary>A resource or data source: <c>resource "aws_sqs_queue" "input" { … }</c>.</summary>
    public sealed record Block(string File, string Kind, string Type, string Name, JsonObject Body)
    {
        public string Address => Kind == "data" ? $"data.{Type}.{Name}" : $"{Type}.{Name}";
    }

    private static readonly HashSet<string> ResourceMetaArguments = ["count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"];
    private static readonly HashSet<string> LifecycleArguments = ["create_before_destroy", "prevent_destroy", "ignore_changes", "replace_triggered_by", "precondition", "postcondition"];
    private static readonly HashSet<string> ConditionArguments = ["condition", "error_message"];
    private static readonly HashSet<string> DynamicArguments = ["for_each", "iterator", "labels", "content"];
    private static readonly HashSet<string> VariableArguments = ["description", "type", "default", "validation", "sensitive", "nullable", "ephemeral"];
    private static readonly HashSet<string> OutputArguments = ["description", "value", "sensitive", "depends_on", "precondition", "ephemeral"];
    private static readonly HashSet<string> ModuleMetaArguments = ["source", "version", "providers", "count", "for_each", "depends_on"];

    private readonly JsonObject _schema;

    private TerraformConfig(string directory, JsonObject document)
    {
        Directory = directory;
        _schema = document["schema"]!.AsObject();
        ProviderVersion = (string)document["provider"]!["version"]!;
        var files = document["files"]!.AsObject();
        Files = files.Select(f => f.Key).ToList();
        foreach (var (file, node) in files)
        {
            var config = node!.AsObject();
            foreach (var kind in new[] { "resource", "data" })
            {
                foreach (var (type, named) in Section(config, kind))
                {
                    foreach (var (name, bodies) in named!.AsObject())
                        (kind == "data" ? DataSources : Resources).AddRange(bodies!.AsArray().Select(b => new Block(file, kind, type, name, b!.AsObject())));
                }
            }
            Merge(Variables, config, "variable", file);
            Merge(Outputs, config, "output", file);
            Merge(Modules, config, "module", file);
            Merge(Providers, config, "provider", file);
            TerraformSettings.AddRange(AsBlocks(config["terraform"]));
            foreach (var locals in AsBlocks(config["locals"]))
            {
                foreach (var (name, value) in locals)
                {
                    if (!Locals.TryAdd(name, value?.DeepClone()))
                        throw new InvalidOperationException($"{file}: local.{name} is declared twice");
                }
            }
        }
    }

    public string Directory { get; }

    /// <summary>The hashicorp/aws version the schema was generated from.</summary>
    public string ProviderVersion { get; }

    public IReadOnlyList<string> Files { get; }

    public List<Block> Resources { get; } = [];

    public List<Block> DataSources { get; } = [];

    public Dictionary<string, JsonObject> Variables { get; } = [];

    public Dictionary<string, JsonObject> Outputs { get; } = [];

    public Dictionary<string, JsonObject> Modules { get; } = [];

    public Dictionary<string, JsonObject> Providers { get; } = [];

    /// <summary>The <c>terraform { … }</c> blocks.</summary>
    public List<JsonObject> TerraformSettings { get; } = [];

    public Dictionary<string, JsonNode?> Locals { get; } = [];

    /// <summary>Runs tools/terraform-check.mjs on a directory with the node 22 tools/ pins.</summary>
    public static async Task<TerraformConfig> LoadAsync(string directory, CancellationToken cancellationToken)
    {
        var script = Path.Combine(NodeTool.Folder, "terraform-check.mjs");
        foreach (var package in new[] { "@cdktf/hcl2json", "@cdktf/provider-aws" })
        {
            if (!System.IO.Directory.Exists(Path.Combine(NodeTool.Folder, "node_modules", package)))
                throw new InvalidOperationException($"tools/node_modules/{package} is missing: run ./test.sh, which installs tools/ with npm ci");
        }
        if (!File.Exists(NodeTool.Node22))
            throw new InvalidOperationException($"{NodeTool.Node22} is missing: run ./test.sh, which installs tools/ with npm ci");
        var info = new ProcessStartInfo(NodeTool.Node22)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(script);
        info.ArgumentList.Add(directory);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{NodeTool.Node22} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"terraform-check.mjs {directory} exited with {process.ExitCode}: {await stderr}");
        return new TerraformConfig(directory, JsonNode.Parse(await stdout)!.AsObject());
    }

    public IEnumerable<Block> OfType(string type) => Resources.Where(r => r.Type == type);

    public Block Resource(string type, string name) =>
        Resources.SingleOrDefault(r => r.Type == type && r.Name == name)
        ?? throw new InvalidOperationException($"{Directory} has no resource {type}.{name}");

    public Block Data(string type, string name) =>
        DataSources.SingleOrDefault(r => r.Type == type && r.Name == name)
        ?? throw new InvalidOperationException($"{Directory} has no data source {type}.{name}");

    /// <summary>Everything <c>terraform validate</c> would refuse that can be seen without evaluating: unknown types,
    /// arguments and blocks (nested ones too, each against its own block's schema), missing required arguments,
    /// misplaced meta-arguments, and references to undeclared variables, locals, resources, data sources, attributes,
    /// modules and module outputs. <paramref name="modules"/> are the configurations of the modules called, by source.</summary>
    public List<string> Problems(IReadOnlyDictionary<string, TerraformConfig>? modules = null)
    {
        List<string> problems = [];
        foreach (var twice in Resources.Concat(DataSources).GroupBy(b => b.Address).Where(g => g.Count() > 1))
            problems.Add($"{twice.Key} is declared {twice.Count()} times ({string.Join(", ", twice.Select(b => b.File))})");
        foreach (var block in Resources.Concat(DataSources))
        {
            var where = $"{block.File}: {block.Address}";
            if (_schema[block.Kind]?[block.Type] is not JsonObject schema)
            {
                problems.Add($"{where}: the AWS provider {ProviderVersion} has no {(block.Kind == "data" ? "data source" : "resource type")} {block.Type}");
                continue;
            }
            CheckBlock(problems, where, block.Body, schema, (string)schema["root"]!, topLevel: true);
        }
        foreach (var (name, provider) in Providers)
        {
            if (_schema["provider"]?[name] is JsonObject schema)
                CheckBlock(problems, $"provider \"{name}\"", provider, schema, (string)schema["root"]!, topLevel: false);
            else
                problems.Add($"provider \"{name}\": not the AWS provider, nothing to check it against");
        }
        foreach (var (name, variable) in Variables)
        {
            Unknown(problems, $"variable \"{name}\"", variable, VariableArguments);
            foreach (var validation in Blocks(variable, "validation"))
                Unknown(problems, $"variable \"{name}\" validation", validation, ConditionArguments);
        }
        foreach (var (name, output) in Outputs)
            Unknown(problems, $"output \"{name}\"", output, OutputArguments);
        CheckModuleCalls(problems, modules ?? new Dictionary<string, TerraformConfig>());
        CheckReferences(problems, modules ?? new Dictionary<string, TerraformConfig>());
        return problems;
    }

    private void CheckBlock(List<string> problems, string path, JsonObject body, JsonObject schema, string iface, bool topLevel)
    {
        var properties = schema["interfaces"]![iface]!.AsArray().Select(p => p!.AsObject()).ToDictionary(p => (string)p["name"]!);
        var present = new HashSet<string>(body.Select(p => p.Key));
        foreach (var (key, value) in body)
        {
            if (topLevel && ResourceMetaArguments.Contains(key))
            {
                if (key == "lifecycle")
                {
                    foreach (var lifecycle in AsBlocks(value))
                    {
                        Unknown(problems, $"{path} lifecycle", lifecycle, LifecycleArguments);
                        foreach (var condition in Blocks(lifecycle, "precondition").Concat(Blocks(lifecycle, "postcondition")))
                            Unknown(problems, $"{path} lifecycle condition", condition, ConditionArguments);
                    }
                }
                continue;
            }
            if (key == "dynamic")
            {
                // dynamic "statement" { for_each = …, content { … } } writes statement blocks: check each content as one.
                foreach (var (blockName, dynamics) in value!.AsObject())
                {
                    present.Add(blockName);
                    foreach (var dynamic in AsBlocks(dynamics))
                    {
                        Unknown(problems, $"{path} dynamic \"{blockName}\"", dynamic, DynamicArguments);
                        CheckNested(problems, path, blockName, Blocks(dynamic, "content").ToList(), null, schema, properties);
                    }
                }
                continue;
            }
            CheckNested(problems, path, key, AsBlocks(value).ToList(), value, schema, properties);
        }
        foreach (var (name, property) in properties)
        {
            if (!(bool)property["optional"]! && !present.Contains(name))
                problems.Add($"{path}: the required argument \"{name}\" is missing");
        }
    }

    /// <summary>Checks one name of a block: an argument (<paramref name="value"/>) or nested blocks (<paramref name="blocks"/>).</summary>
    private void CheckNested(List<string> problems, string path, string key, List<JsonObject> blocks, JsonNode? value, JsonObject schema,
        Dictionary<string, JsonObject> properties)
    {
        if (!properties.TryGetValue(key, out var property))
        {
            problems.Add($"{path}: no argument or block named \"{key}\" (the AWS provider {ProviderVersion} knows: {string.Join(", ", properties.Keys.Order(StringComparer.Ordinal))})");
            return;
        }
        var nested = NestedInterface(schema, (string)property["type"]!);
        if (nested is not null)
        {
            foreach (var block in blocks)
                CheckBlock(problems, $"{path} {key}", block, schema, nested, topLevel: false);
        }
        else if (blocks.Count > 0 && (value is null || value.AsArray().Count == blocks.Count))
        {
            problems.Add($"{path}: \"{key}\" is an argument (key = value), written as a block");
        }
    }

    /// <summary>The interface a property's TypeScript type names (<c>LambdaFunctionEnvironment</c>,
    /// <c>DynamodbTableAttribute[] | cdktf.IResolvable</c>): the property is a nested block.</summary>
    private static string? NestedInterface(JsonObject schema, string type)
    {
        var leading = LeadingIdentifier().Match(type).Value;
        return schema["interfaces"]!.AsObject().ContainsKey(leading) ? leading : null;
    }

    private void CheckModuleCalls(List<string> problems, IReadOnlyDictionary<string, TerraformConfig> modules)
    {
        foreach (var (name, call) in Modules)
        {
            var source = (string?)call["source"];
            if (source is null || !modules.TryGetValue(source, out var module))
            {
                problems.Add($"module \"{name}\": its source {source} was not given to the check");
                continue;
            }
            foreach (var (key, _) in call)
            {
                if (!ModuleMetaArguments.Contains(key) && !module.Variables.ContainsKey(key))
                    problems.Add($"module \"{name}\": the module at {source} has no variable \"{key}\"");
            }
            foreach (var (variable, declaration) in module.Variables)
            {
                if (!declaration.ContainsKey("default") && !call.ContainsKey(variable))
                    problems.Add($"module \"{name}\": the required variable \"{variable}\" of {source} is not set");
            }
        }
    }

    private void CheckReferences(List<string> problems, IReadOnlyDictionary<string, TerraformConfig> modules)
    {
        var resources = Resources.Select(r => $"{r.Type}.{r.Name}").ToHashSet();
        var data = DataSources.Select(r => $"{r.Type}.{r.Name}").ToHashSet();
        foreach (var (where, expression) in Expressions())
        {
            foreach (Match m in VariableReference().Matches(expression))
            {
                if (!Variables.ContainsKey(m.Groups[1].Value))
                    problems.Add($"{where}: var.{m.Groups[1].Value} is not a declared variable");
            }
            foreach (Match m in LocalReference().Matches(expression))
            {
                if (!Locals.ContainsKey(m.Groups[1].Value))
                    problems.Add($"{where}: local.{m.Groups[1].Value} is not a declared local value");
            }
            foreach (Match m in DataReference().Matches(expression))
                CheckAttribute(problems, where, "data", data, m);
            foreach (Match m in ResourceReference().Matches(expression))
                CheckAttribute(problems, where, "resource", resources, m);
            foreach (Match m in ModuleReference().Matches(expression))
            {
                var (name, output) = (m.Groups[1].Value, m.Groups[2].Value);
                if (!Modules.TryGetValue(name, out var call))
                    problems.Add($"{where}: module.{name} is not a declared module");
                else if (output.Length > 0 && modules.TryGetValue((string?)call["source"] ?? "", out var module) && !module.Outputs.ContainsKey(output))
                    problems.Add($"{where}: module.{name} has no output \"{output}\"");
            }
        }
    }

    private void CheckAttribute(List<string> problems, string where, string kind, HashSet<string> declared, Match m)
    {
        var (type, name, attribute) = (m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Value);
        var prefix = kind == "data" ? "data." : "";
        if (!declared.Contains($"{type}.{name}"))
        {
            problems.Add($"{where}: {prefix}{type}.{name} is not declared");
            return;
        }
        if (attribute.Length == 0 || _schema[kind]?[type] is not JsonObject schema)
            return;
        // The class's getters are the attributes, in camelCase: target_key_arn → targetKeyArn.
        var camel = SnakeSegment().Replace(attribute, s => s.Value[1..].ToUpperInvariant());
        if (!schema["attributes"]!.AsArray().Any(a => (string)a! == camel))
            problems.Add($"{where}: {prefix}{type}.{name} has no attribute \"{attribute}\"");
    }

    /// <summary>Every expression of the configuration (each <c>${…}</c> of every string), with where it is.</summary>
    public IEnumerable<(string Where, string Expression)> Expressions()
    {
        IEnumerable<(string, JsonNode?)> roots =
        [
            .. Resources.Concat(DataSources).Select(b => ($"{b.File}: {b.Address}", (JsonNode?)b.Body)),
            .. Variables.Select(v => ($"variable \"{v.Key}\"", (JsonNode?)v.Value)),
            .. Outputs.Select(o => ($"output \"{o.Key}\"", (JsonNode?)o.Value)),
            .. Modules.Select(m => ($"module \"{m.Key}\"", (JsonNode?)m.Value)),
            .. Providers.Select(p => ($"provider \"{p.Key}\"", (JsonNode?)p.Value)),
            .. Locals.Select(l => ($"local.{l.Key}", l.Value)),
        ];
        foreach (var (where, root) in roots)
        {
            foreach (var text in Strings(root))
            {
                foreach (var expression in Interpolations(text))
                    yield return (where, expression);
            }
        }
    }

    /// <summary>Every string in a JSON tree: values, and the keys of objects (an object's keys can be expressions).</summary>
    public static IEnumerable<string> Strings(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, value) in o)
                {
                    yield return key;
                    foreach (var s in Strings(value))
                        yield return s;
                }
                break;
            case JsonArray a:
                foreach (var s in a.SelectMany(Strings))
                    yield return s;
                break;
            case JsonValue v when v.TryGetValue<string>(out var text):
                yield return text;
                break;
        }
    }

    /// <summary>The outermost <c>${…}</c> parts of a string, braces balanced (<c>${jsonencode({…})}</c>).</summary>
    public static IEnumerable<string> Interpolations(string text)
    {
        for (var start = text.IndexOf("${", StringComparison.Ordinal); start >= 0; start = text.IndexOf("${", start, StringComparison.Ordinal))
        {
            var depth = 0;
            var end = start + 1;
            for (; end < text.Length; end++)
            {
                if (text[end] == '{')
                    depth++;
                else if (text[end] == '}' && --depth == 0)
                    break;
            }
            yield return text[(start + 2)..Math.Min(end, text.Length)];
            start = end;
        }
    }

    public static IEnumerable<JsonObject> Blocks(JsonObject body, string name) => AsBlocks(body[name]);

    /// <summary>hcl2json writes each block as an array of objects (one per occurrence).</summary>
    private static IEnumerable<JsonObject> AsBlocks(JsonNode? node) =>
        node is JsonArray array && array.All(e => e is JsonObject) ? array.Select(e => e!.AsObject()) : [];

    private static JsonObject Section(JsonObject config, string name) => config[name] as JsonObject ?? [];

    private static void Merge(Dictionary<string, JsonObject> into, JsonObject config, string section, string file)
    {
        foreach (var (name, bodies) in Section(config, section))
        {
            foreach (var body in AsBlocks(bodies))
            {
                if (!into.TryAdd(name, body))
                    throw new InvalidOperationException($"{file}: {section} \"{name}\" is declared twice");
            }
        }
    }

    private static void Unknown(List<string> problems, string path, JsonObject body, HashSet<string> allowed)
    {
        foreach (var (key, _) in body)
        {
            if (!allowed.Contains(key))
                problems.Add($"{path}: no argument or block named \"{key}\" (allowed: {string.Join(", ", allowed)})");
        }
    }

    [GeneratedRegex(@"^\w+")]
    private static partial Regex LeadingIdentifier();

    [GeneratedRegex(@"(?<![\w.])var\.([A-Za-z_][\w-]*)")]
    private static partial Regex VariableReference();

    [GeneratedRegex(@"(?<![\w.])local\.(\w+)")]
    private static partial Regex LocalReference();

    [GeneratedRegex(@"(?<![\w.])data\.(aws_\w+)\.(\w+)(?:\[[^\]]*\])?(?:\.(\w+))?")]
    private static partial Regex DataReference();

    [GeneratedRegex(@"(?<![\w.])(aws_\w+)\.(\w+)(?:\[[^\]]*\])?(?:\.(\w+))?")]
    private static partial Regex ResourceReference();

    [GeneratedRegex(@"(?<![\w.])module\.(\w+)(?:\.(\w+))?")]
    private static partial Regex ModuleReference();

    [GeneratedRegex(@"_[a-z0-9]")]
    private static partial Regex SnakeSegment();
}
