// Reads a Terraform directory without a Terraform binary, for tests/Ion.Tests/Deploy/TerraformModuleTests.cs:
//   node terraform-check.mjs DIR   → one JSON document on stdout:
//   { "files": { "main.tf": <hcl2json of the file>, … },
//     "provider": { "name": "registry.terraform.io/hashicorp/aws", "version": … },
//     "schema": { "resource": { "aws_sqs_queue": <schema> | null, … }, "data": { … }, "provider": { "aws": … } } }
// A schema is what the npm package @cdktf/provider-aws (generated from the hashicorp/aws provider's schema) declares
// for a type, or for the provider block: "root", the interface of the block's own arguments; "interfaces", each
// interface's properties as { name (as written in .tf), optional, type (TypeScript) }, where a type naming another
// interface is a nested block; "attributes", the getters of the type's class (what other blocks may reference).
// null: the provider has no such type. This only extracts; the checks are in C#.
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "@cdktf/hcl2json";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node terraform-check.mjs DIR");
  process.exit(2);
}
const lib = join(dirname(fileURLToPath(import.meta.url)), "node_modules", "@cdktf", "provider-aws", "lib");

// Each file on its own, so a syntax error (and the C# side's messages) name the file.
const files = {};
for (const file of readdirSync(dir).filter(f => f.endsWith(".tf")).sort())
  files[file] = await parse(file, readFileSync(join(dir, file), "utf8"));

function schema(kind, type) {
  const short = type.replace(/^aws_/, "");
  const folder = kind === "provider" ? "provider" : `${kind === "data" ? "data-aws-" : ""}${short.replaceAll("_", "-")}`;
  const path = join(lib, folder, "index.d.ts");
  if (!(kind === "provider" ? type === "aws" : type.startsWith("aws_")) || !existsSync(path)) return null;
  const text = readFileSync(path, "utf8");
  const interfaces = {};
  let root = null;
  for (const m of text.matchAll(/^export interface (\w+)( extends cdktf\.TerraformMetaArguments)? \{\n([\s\S]*?)^\}/gm)) {
    if (m[2] || m[1] === "AwsProviderConfig") root = m[1];
    // Every property is preceded by its documentation link, whose anchor is the name as written in HCL.
    interfaces[m[1]] = [...m[3].matchAll(/#(\w+) \w+#\w+\}[\s\S]*?readonly \w+(\??): ([^;]+);/g)]
      .map(p => ({ name: p[1], optional: p[2] === "?", type: p[3].trim() }));
  }
  const base = kind === "data" ? "TerraformDataSource" : "TerraformResource";
  const body = text.match(new RegExp(`^export declare class \\w+ extends cdktf\\.${base} \\{\\n([\\s\\S]*?)^\\}`, "m"));
  const attributes = body ? [...new Set([...body[1].matchAll(/^ {4}get (\w+)\(\)/gm)].map(g => g[1]))] : [];
  return { root, interfaces, attributes };
}

const provider = JSON.parse(readFileSync(join(lib, "..", "package.json"), "utf8")).cdktf.provider;
const result = { files, provider, schema: { resource: {}, data: {}, provider: {} } };
for (const config of Object.values(files))
  for (const kind of ["resource", "data", "provider"])
    for (const type of Object.keys(config[kind] ?? {}))
      result.schema[kind][type] ??= schema(kind, type);
// Exit only once stdout has taken it all (a pipe is written asynchronously); hcl2json's Go runtime would keep the
// process alive otherwise.
process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(0));
