// Generates each capability's types.ts from its schema.json (input and x-vivary-output), so the
// TypeScript types never drift from the schema. `bun run gen` rewrites them; a test checks them.
import { compile } from "json-schema-to-typescript";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..", "capabilities");
const pascal = (s: string) => s.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase());

export async function generate(name: string): Promise<string> {
  const schema = JSON.parse(readFileSync(join(root, name, "schema.json"), "utf8"));
  const { "x-vivary-output": output, ...input } = schema;
  const opts = { bannerComment: "", additionalProperties: false, strictIndexSignatures: true, format: true };
  const inputTs = await compile({ ...input, title: `${pascal(name)}Input` }, `${pascal(name)}Input`, opts);
  const outputTs = await compile({ ...output, title: `${pascal(name)}Result` }, `${pascal(name)}Result`, opts);
  return `// Generated from schema.json by scripts/gen-types.ts; do not edit.\n\n${inputTs}\n${outputTs}`;
}

if (import.meta.main) {
  for (const name of readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)) {
    writeFileSync(join(root, name, "types.ts"), await generate(name));
  }
}
