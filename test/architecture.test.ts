// Keeps ARCHITECTURE.md and the man pages true. The layering rules are read from the two tables
// under "Layering rules" in ARCHITECTURE.md and checked against the imports of every source file;
// each capability must have its full folder, man page, tests and entry point; generated files
// (types.ts, man/CAP.1) must match their schema; and the numbers the man pages and the C stub
// repeat must match the code they come from. Run after a build: it checks dist/bin too.
import { describe, expect, test } from "bun:test";
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, extname, join, relative, resolve } from "node:path";
import { LIMITS } from "../broker/server.ts";
import { CAPABILITIES, CATALOG } from "../capabilities/registry.ts";
import { Exit } from "../lib/exit.ts";
import { MAX_ARGS, MAX_FRAME, PROTOCOL_VERSION } from "../lib/frame.ts";
import { JAIL } from "../lib/paths.ts";
import { loadPolicyText } from "../policy/load.ts";
import { generate as generateMan } from "../scripts/gen-man.ts";
import { generate as generateTypes } from "../scripts/gen-types.ts";
import { problemsOf } from "./policy-problems.ts";

const ROOT = join(import.meta.dir, "..");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const SOURCE = /\.(ts|mts|cts|js|mjs|cjs)$/;
const SKIP_DIRS = new Set(["node_modules", "dist"]);

/** Every source file of the repository, as a path relative to its root. */
function sourceFiles(dir = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    if (e.name.startsWith(".") || SKIP_DIRS.has(e.name)) continue;
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...sourceFiles(rel));
    else if (SOURCE.test(e.name) && !e.name.endsWith(".d.ts")) out.push(rel);
  }
  return out.sort();
}

// ---------------------------------------------------------------------------------------------
// Imports

type Import = { spec: string; line: number };

/** The module specifiers a source text imports: static, re-exports, side-effect, dynamic, require. */
function importsOf(text: string): Import[] {
  const found: { spec: string; at: number }[] = [];
  const patterns = [
    /^[ \t]*(?:import|export)\b[^;'"`]*?\bfrom\s*["']([^"']+)["']/gm,
    /^[ \t]*import\s*["']([^"']+)["']/gm,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
    /\brequire\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) found.push({ spec: m[1]!, at: m.index! + m[0].length });
  return found.map(({ spec, at }) => ({ spec, line: text.slice(0, at).split("\n").length }));
}

/** A relative specifier as a repository path; a package specifier as its package name. */
function target(file: string, spec: string): { kind: "file"; path: string } | { kind: "package"; name: string } {
  if (spec.startsWith(".")) {
    let p = relative(ROOT, resolve(ROOT, dirname(file), spec)).split("\\").join("/");
    if (!extname(p) && existsSync(join(ROOT, `${p}.ts`))) p = `${p}.ts`;
    return { kind: "file", path: p };
  }
  const parts = spec.split("/");
  return { kind: "package", name: spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]! };
}

describe("importsOf", () => {
  const cases: [string, string, string[]][] = [
    ["a named import", `import { a, b } from "../lib/exit.ts";`, ["../lib/exit.ts"]],
    ["a type import over several lines", `import type {\n  A,\n  B,\n} from "./model.ts";`, ["./model.ts"]],
    ["a namespace import", `import * as t from "typanion";`, ["typanion"]],
    ["a default import of JSON", `import schemaJson from "./schema.json";`, ["./schema.json"]],
    ["a re-export", `export { x } from "./x.ts";`, ["./x.ts"]],
    ["a side-effect import", `import "./polyfill.ts";`, ["./polyfill.ts"]],
    ["a dynamic import", `const m = await import("../cli/viv.ts");`, ["../cli/viv.ts"]],
    ["a require", `const fs = require("node:fs");`, ["node:fs"]],
    ["no import in a line comment", `// import { a } from "../broker/server.ts";`, []],
    ["no import in a string", `const s = "import x from 'y'";`, []],
    ["a local export without from", `export type { Node };\nexport const a = "b";`, []],
  ];
  for (const [name, text, specs] of cases) {
    test(name, () => expect(importsOf(text).map((i) => i.spec)).toEqual(specs));
  }
});

// ---------------------------------------------------------------------------------------------
// The rules, as ARCHITECTURE.md writes them

type Rule = { pattern: string; allowed: string[] | "anything" };

/** The markdown tables of one `## ` section, outside code fences: rows of cells, header and rule dropped. */
function tablesOf(markdown: string, heading: string): string[][][] {
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => l.trim() === `## ${heading}`);
  if (start < 0) throw new Error(`ARCHITECTURE.md has no '## ${heading}' section`);
  const tables: string[][][] = [];
  let fenced = false;
  let current: string[][] | null = null;
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith("## ")) break;
    if (line.startsWith("```")) fenced = !fenced;
    if (!fenced && line.startsWith("|")) {
      const cells = line.split("|").slice(1, -1).map((c) => c.trim());
      if (!current) tables.push((current = []));
      if (!cells.every((c) => /^:?-+:?$/.test(c))) current.push(cells);
    } else current = null;
  }
  return tables.map((t) => t.slice(1));
}

const ticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

const md = read("ARCHITECTURE.md");
const [layerTable, packageTable] = tablesOf(md, "Layering rules");
const LAYERS: Rule[] = (layerTable ?? []).flatMap(([files, allowed]) =>
  ticked(files!).map((pattern) => ({ pattern, allowed: allowed!.trim() === "anything" ? ("anything" as const) : ticked(allowed!) })),
);
const PACKAGES: Rule[] = (packageTable ?? []).flatMap(([pkgs, where]) => ticked(pkgs!).map((pattern) => ({ pattern, allowed: ticked(where!) })));

/**
 * A path pattern of the tables as a regular expression: a trailing / is a folder and everything
 * under it, NAME one component (captured, or given), * any one component, and a pattern without
 * a slash that starts with * a file name anywhere.
 */
function compile(pattern: string, name?: string): RegExp {
  const anywhere = pattern.startsWith("*") && !pattern.includes("/");
  let re = pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
  re = re.replace(/NAME/g, name !== undefined ? name.replace(/[.+?^${}()|[\]\\]/g, "\\$&") : "(?<name>[^/]+)").replace(/\*/g, "[^/]+");
  if (anywhere) return new RegExp(`(^|/)${re}$`);
  return new RegExp(pattern.endsWith("/") ? `^${re}` : `^${re}$`);
}

/** The most specific row for a file: a file-name-anywhere row first, then the longest pattern. */
function ruleFor(file: string): { rule: Rule; name?: string } | null {
  let best: { rule: Rule; name?: string; rank: number } | null = null;
  for (const rule of LAYERS) {
    const m = compile(rule.pattern).exec(file);
    if (!m) continue;
    const rank = rule.pattern.startsWith("*") && !rule.pattern.includes("/") ? Infinity : rule.pattern.length;
    if (!best || rank > best.rank) best = { rule, name: m.groups?.name, rank };
  }
  return best;
}

const FILES = sourceFiles();
const IMPORTS = FILES.map((file) => ({ file, imports: importsOf(read(file)).map((i) => ({ ...i, target: target(file, i.spec) })) }));

describe("layering rules of ARCHITECTURE.md", () => {
  test("the two tables are there and name real folders and files", () => {
    expect(LAYERS.length).toBeGreaterThan(5);
    expect(PACKAGES.length).toBeGreaterThan(2);
    const stale = LAYERS.filter((r) => !FILES.some((f) => compile(r.pattern).test(f))).map((r) => r.pattern);
    expect(stale).toEqual([]);
  });

  test("the import scan finds imports (so that the checks below are not vacuous)", () => {
    const server = IMPORTS.find((i) => i.file === "broker/server.ts")!;
    expect(server.imports.map((i) => i.spec)).toContain("../lib/frame.ts");
    const bin = IMPORTS.find((i) => i.file === "bin/vivary.ts")!;
    expect(bin.imports.map((i) => i.spec)).toContain("../cli/viv.ts");
  });

  test("every source file falls under a row", () => {
    expect(FILES.filter((f) => !ruleFor(f))).toEqual([]);
  });

  test("every file imports only what its row allows", () => {
    const violations: string[] = [];
    for (const { file, imports } of IMPORTS) {
      const r = ruleFor(file);
      if (!r || r.rule.allowed === "anything") continue;
      const allowed = r.rule.allowed.map((a) => compile(a, r.name));
      for (const i of imports) {
        if (i.target.kind !== "file") continue;
        const path = i.target.path;
        if (!allowed.some((a) => a.test(path))) {
          violations.push(`${file}:${i.line}: imports '${path}', but row '${r.rule.pattern}' allows only ${r.rule.allowed.map((a) => `'${a}'`).join(", ")}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  test("restricted packages are imported only where the package table allows", () => {
    const violations: string[] = [];
    for (const { file, imports } of IMPORTS) {
      if (ruleFor(file)?.rule.allowed === "anything") continue;
      for (const i of imports) {
        if (i.target.kind !== "package") continue;
        const rule = PACKAGES.find((p) => p.pattern === (i.target as { name: string }).name);
        if (rule && rule.allowed !== "anything" && !rule.allowed.some((a) => compile(a).test(file))) {
          violations.push(`${file}:${i.line}: imports '${i.spec}', allowed only in ${rule.allowed.map((a) => `'${a}'`).join(", ")}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  test("policy/ knows nothing of sockets", () => {
    const SOCKET_MODULES = new Set(["node:net", "net", "node:dgram", "dgram", "node:http", "http", "node:https", "https", "node:tls", "tls", "bun"]);
    const SOCKET_CALLS = /\bBun\.(listen|connect|serve|udpSocket)\b|\bfetch\(|\bWebSocket\b/;
    const found: string[] = [];
    for (const { file, imports } of IMPORTS.filter((i) => i.file.startsWith("policy/") && ruleFor(i.file)?.rule.allowed !== "anything")) {
      for (const i of imports) if (SOCKET_MODULES.has(i.spec)) found.push(`${file}:${i.line}: imports '${i.spec}'`);
      read(file).split("\n").forEach((l, n) => SOCKET_CALLS.test(l) && found.push(`${file}:${n + 1}: ${l.trim()}`));
    }
    expect(found).toEqual([]);
  });

  test("library code never logs", () => {
    const LIBRARY = /^(lib|policy|providers|capabilities|images)\//;
    const LOGS = /\bconsole\.|\bprocess\.(stdout|stderr)\b/;
    const found: string[] = [];
    for (const file of FILES.filter((f) => LIBRARY.test(f) && f !== "lib/cli.ts" && ruleFor(f)?.rule.allowed !== "anything")) {
      read(file).split("\n").forEach((l, n) => LOGS.test(l) && found.push(`${file}:${n + 1}: ${l.trim()}`));
    }
    expect(found).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Capabilities: one folder each, the same files in each, one registry

const NAMES = [...CAPABILITIES.keys()];

describe("capabilities", () => {
  test("the registry lists every capability folder, and only those", () => {
    const folders = readdirSync(join(ROOT, "capabilities"), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    expect(NAMES.toSorted()).toEqual(folders.toSorted());
  });

  for (const name of NAMES) {
    describe(name, () => {
      const dir = join("capabilities", name);

      test("has schema.json, index.ts and types.ts, and its schema is named after it", () => {
        for (const f of ["schema.json", "index.ts", "types.ts"]) expect(existsSync(join(ROOT, dir, f)), `${dir}/${f}`).toBe(true);
        expect(CAPABILITIES.get(name)!.schema.title).toBe(name);
      });

      test("has a man page, man/NAME.1", () => {
        expect(existsSync(join(ROOT, "man", `${name}.1`)), `man/${name}.1`).toBe(true);
      });

      test("has a bun test or a bats suite in its folder", () => {
        const tests = readdirSync(join(ROOT, dir)).filter((f) => f.endsWith(".test.ts") || f.endsWith(".bats"));
        expect(tests.length, `no *.test.ts or *.bats in ${dir}/`).toBeGreaterThan(0);
      });

      test("has an executable entry point in dist/bin after the build", () => {
        const bin = join(ROOT, "dist", "bin", name);
        expect(existsSync(bin), `${bin} (run 'bun run build.ts')`).toBe(true);
        expect(statSync(bin).isFile()).toBe(true);
        expect(() => accessSync(bin, constants.X_OK)).not.toThrow();
      });

      test("types.ts is up to date with schema.json (bun run scripts/gen-types.ts)", async () => {
        expect(read(join(dir, "types.ts"))).toBe(await generateTypes(name));
      });

      test("man/NAME.1 is up to date with schema.json (bun run scripts/gen-man.ts)", () => {
        expect(read(join("man", `${name}.1`))).toBe(generateMan(name));
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Man pages: one per program, and the facts they repeat match the code

/** The text of one .SH section of a roff page. */
function roffSection(page: string, title: string): string {
  const m = new RegExp(`^\\.SH "?${title}"?\\n([\\s\\S]*?)(?=^\\.SH |(?![\\s\\S]))`, "m").exec(page);
  if (!m) throw new Error(`no .SH ${title}`);
  return m[1]!;
}

/** roff text as it reads: the escapes our pages use, undone. */
const unroff = (s: string) =>
  s.replace(/\\-/g, "-").replace(/\\\(aq/g, "'").replace(/\\\(dq/g, '"').replace(/\\&/g, "").replace(/\\e/g, "\\");

describe("man pages", () => {
  test("every program in bin/ has its page", () => {
    const programs = readdirSync(join(ROOT, "bin")).filter((f) => f.endsWith(".ts") && f !== "vivary.ts").map((f) => basename(f, ".ts"));
    expect(programs).toContain("viv");
    for (const p of programs) expect(existsSync(join(ROOT, "man", `${p}.1`)) || existsSync(join(ROOT, "man", `${p}.8`)), `man page of ${p}`).toBe(true);
    for (const page of ["vivary-policy.5", "vivary-protocol.7"]) expect(existsSync(join(ROOT, "man", page)), page).toBe(true);
  });

  test("vivary-protocol(7) LIMITS match lib/frame.ts and broker/server.ts", () => {
    const expected: Record<string, number> = {
      "frame size": MAX_FRAME,
      arguments: MAX_ARGS,
      "hello deadline": LIMITS.helloMs / 1000,
      "frame deadline": LIMITS.frameMs / 1000,
      "idle time": LIMITS.idleMs / 1000,
      connections: LIMITS.connectionsPerAgent,
    };
    expect(Object.keys(LIMITS).length, "a new entry in LIMITS needs a line in vivary-protocol(7) and here").toBe(4);
    const section = roffSection(read("man/vivary-protocol.7"), "LIMITS");
    const documented: Record<string, number> = {};
    for (const m of section.matchAll(/^\.TP\n\.B (.+)\n(\d+)/gm)) documented[m[1]!] = Number(m[2]);
    expect(documented).toEqual(expected);
  });

  test("every policy example in vivary-policy(5) is a valid policy", () => {
    const page = read("man/vivary-policy.5");
    const examples = [...page.matchAll(/^\.EX\n([\s\S]*?)^\.EE$/gm)].map((m) => unroff(m[1]!)).filter((t) => /^agent "/m.test(t));
    expect(examples.length).toBeGreaterThan(1);
    const problems = examples.flatMap((text, i) => problemsOf(() => loadPolicyText([{ file: `vivary-policy.5 example ${i + 1}`, text }], CATALOG)));
    expect(problems).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// viv-stub: standalone C whose wire constants repeat lib/

describe("viv-stub", () => {
  const c = read("stub/viv-stub.c");
  const define = (name: string) => {
    const m = new RegExp(`^#define ${name} (.+)$`, "m").exec(c);
    if (!m) throw new Error(`stub/viv-stub.c has no #define ${name}`);
    return m[1]!.trim();
  };
  const integer = (expr: string) => {
    const plain = expr.replace(/(\d+)[uUlL]+/g, "$1");
    if (!/^[\d\s*+()]+$/.test(plain)) throw new Error(`not a constant expression: ${expr}`);
    return Function(`return (${plain});`)() as number;
  };

  test("includes only system headers", () => {
    const includes = [...c.matchAll(/^#include (.+)$/gm)].map((m) => m[1]!);
    expect(includes.length).toBeGreaterThan(0);
    expect(includes.filter((i) => !/^<[\w/.]+>$/.test(i))).toEqual([]);
  });

  test("its wire constants match lib/frame.ts and lib/paths.ts", () => {
    expect(integer(define("MAX_FRAME"))).toBe(MAX_FRAME);
    expect(integer(define("MAX_ARGS"))).toBe(MAX_ARGS);
    expect(integer(define("PROTOCOL_VERSION"))).toBe(PROTOCOL_VERSION);
    expect(define("SOCKET_PATH")).toBe(JSON.stringify(JAIL.socket));
  });

  test("its exit codes match lib/exit.ts", () => {
    const codes: Record<string, number> = { EX_USAGE: Exit.usage, EX_UNAVAILABLE: Exit.unavailable, EX_SOFTWARE: Exit.internal, EX_PROTOCOL: Exit.protocol };
    const defined = [...c.matchAll(/^#define (EX_\w+) /gm)].map((m) => m[1]!);
    expect(defined.toSorted()).toEqual(Object.keys(codes).toSorted());
    for (const [name, code] of Object.entries(codes)) expect(integer(define(name)), name).toBe(code);
  });
});
