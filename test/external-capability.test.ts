// The policy `capability` node (policy/external.ts): each way a registration is refused, with
// file:line, and the one way it is accepted: the executable's schema, printed on --help, has the
// pinned digest and is one the broker can govern. Real executables in a temp dir, run for real.
import { afterAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CATALOG } from "../capabilities/registry.ts";
import { loadPolicyText } from "../policy/load.ts";
import { sha256 } from "../policy/external.ts";
import { problemsOf } from "./policy-problems.ts";

const dir = mkdtempSync(join(tmpdir(), "viv-extcap-"));
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const schema = (over: Record<string, unknown> = {}, name = "ext-echo") => JSON.stringify({
  $schema: "https://json-schema.org/draft/2020-12/schema", title: name, description: "Echo.", type: "object", additionalProperties: false,
  required: ["text"], properties: { text: { type: "string" } }, "x-vivary-risk": "low", "x-vivary-scopes": [], "x-vivary-credential": null, "x-vivary-output": { type: "object" }, ...over,
});

/** An executable that prints `printed` on --help; returns its path and the digest of what it prints. */
function script(name: string, printed: string, mode = 0o755): { path: string; digest: string } {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\ncat <<'JSON'\n${printed}\nJSON\n`);
  chmodSync(path, mode);
  return { path, digest: sha256(new TextEncoder().encode(`${printed}\n`)) };
}

const node = (name: string, exec: string, digest: string, extra = "") => `capability "${name}" {\n    exec "${exec}"\n    schema-sha256 "${digest}"\n${extra}}\n`;
const problems = (text: string) => problemsOf(() => loadPolicyText([{ file: "p.kdl", text }], CATALOG));

test("a pinned schema registers the capability, and a grant of it loads with its risk", () => {
  const s = script("ext-echo", schema());
  const p = loadPolicyText([{ file: "p.kdl", text: `${node("ext-echo", s.path, s.digest)}agent "ext-a" {\n    grant "ext-echo"\n}\n` }], CATALOG);
  const g = p.agents.get("ext-a")!.grants.get("ext-echo")!;
  expect(g.external?.exec).toBe(s.path);
  expect(g.external?.digest).toBe(s.digest);
  expect(p.external?.size).toBe(1);
});

test.each([
  ["another digest", (s: { path: string; digest: string }) => node("ext-echo", s.path, "0".repeat(64)), "p.kdl:1: capability 'ext-echo': the schema '%P --help' prints has sha256 %D, not the pinned 0000000000000000000000000000000000000000000000000000000000000000; review it, then pin it again"],
  ["no digest", (s: { path: string }) => `capability "ext-echo" {\n    exec "${s.path}"\n}\n`, "p.kdl:1: capability 'ext-echo' needs 'schema-sha256' with the 64 hex digits 'viv caps pin %P' prints"],
  ["a relative exec", (s: { digest: string }) => node("ext-echo", "ext-echo", s.digest), "p.kdl:1: capability 'ext-echo' needs 'exec' with an absolute path"],
  ["a built-in name", (s: { path: string; digest: string }) => node("fs-file-write", s.path, s.digest), "p.kdl:1: capability 'fs-file-write' is built in; a registered capability needs a name of its own"],
  ["an unknown child", (s: { path: string; digest: string }) => node("ext-echo", s.path, s.digest, `    user "root"\n`), "p.kdl:4: unknown node 'user' in capability 'ext-echo' (expected 'exec', 'schema-sha256', 'timeout')"],
  ["a long timeout", (s: { path: string; digest: string }) => node("ext-echo", s.path, s.digest, `    timeout "10m"\n`), `p.kdl:1: timeout '10m' is not a duration from "1s" to "5m"`],
])("refused: %s", (_what, text, expected) => {
  const s = script("ext-echo", schema());
  expect(problems(text(s))).toEqual([expected.replaceAll("%P", s.path).replaceAll("%D", s.digest)]);
});

test.each([
  ["a title that is not its name", schema({ title: "other" }), "its schema's title is 'other', not 'ext-bad'"],
  ["scope kinds", schema({ "x-vivary-scopes": ["path"] }), "it declares scope kinds (path): a registered capability has none; the broker cannot check them for it"],
  ["an unknown risk", schema({ "x-vivary-risk": "none" }), "its x-vivary-risk must be one of low, medium, high, critical"],
  ["budgets", schema({ "x-vivary-budgets": {} }), "it declares x-vivary-budgets, which only built-in capabilities may"],
  ["an object property", schema({ properties: { text: { type: "object" } } }), "property 'text' must have a type of string, integer, number, boolean, array"],
])("a schema with %s is refused", (_what, printed, why) => {
  const s = script("ext-bad", printed.replace('"title":"ext-echo"', '"title":"ext-bad"'));
  expect(problems(node("ext-bad", s.path, s.digest))).toEqual([`p.kdl:1: capability 'ext-bad' refused: ${why}`]);
});

test("an executable others may write is refused, and a missing one", () => {
  const s = script("ext-open", schema({}, "ext-open"), 0o757);
  expect(problems(node("ext-open", s.path, s.digest))).toEqual([`p.kdl:1: capability 'ext-open': '${s.path}' is writable by group or others: only its owner may change what runs`]);
  expect(problems(node("ext-gone", join(dir, "ext-gone"), s.digest))).toEqual([`p.kdl:1: capability 'ext-gone': cannot use '${join(dir, "ext-gone")}': ENOENT`]);
});

test("a grant of a capability that needs no credential may not name one (negative control of the catalog entry)", () => {
  const s = script("ext-echo", schema());
  expect(problems(`${node("ext-echo", s.path, s.digest)}agent "ext-a" {\n    grant "ext-echo" {\n        credential "x"\n    }\n}\n`)).toEqual(["p.kdl:7: 'credential' is not used by 'ext-echo', which needs no secret"]);
  expect(problems(`agent "ext-a" {\n    grant "ext-echo"\n}\n`)).toEqual(["p.kdl:2: unknown capability 'ext-echo'"]);
});
