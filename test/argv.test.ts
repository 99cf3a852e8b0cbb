// Table tests of the schema-driven argv parser (lib/capability.ts), against fs-file-write's real
// schema and a small schema with every option type.
import { describe, expect, test } from "bun:test";
import { fsFileWrite } from "../capabilities/fs-file-write/index.ts";
import { parseArgv, type Args, type CapabilitySchema } from "../lib/capability.ts";
import { VivError } from "../lib/exit.ts";

const fs = fsFileWrite.schema;
const every: CapabilitySchema = {
  ...fs,
  required: ["shipping_address_id"],
  properties: {
    shipping_address_id: { type: "string" },
    count: { type: "integer", minimum: 1, maximum: 10 },
    price: { type: "number" },
    dry_run: { type: "boolean" },
    tag: { type: "array", items: { type: "string" }, maxItems: 2 },
    mode: { type: "string", enum: ["a", "b"], default: "a" },
  },
};

describe("accepted", () => {
  const cases: [string, CapabilitySchema, string[], Record<string, unknown>][] = [
    ["space-separated values", fs, ["--path", "/srv/r/a", "--content", "hi"], { path: "/srv/r/a", content: "hi", encoding: "utf-8" }],
    ["= values", fs, ["--path=/srv/r/a", "--content=a=b"], { path: "/srv/r/a", content: "a=b", encoding: "utf-8" }],
    ["a value that looks like a flag stays a value", fs, ["--path", "/srv/r/a", "--content", "--path"], { path: "/srv/r/a", content: "--path", encoding: "utf-8" }],
    ["a --help value is data, not a help request", fs, ["--path", "/srv/r/a", "--content", "--help"], { path: "/srv/r/a", content: "--help", encoding: "utf-8" }],
    ["an empty value", fs, ["--path", "/srv/r/a", "--content", ""], { path: "/srv/r/a", content: "", encoding: "utf-8" }],
    ["a trailing --", fs, ["--path", "/srv/r/a", "--content", "x", "--"], { path: "/srv/r/a", content: "x", encoding: "utf-8" }],
    ["kebab-case names, every type", every, ["--shipping-address-id", "s1", "--count", "3", "--price", "2.5", "--dry-run", "--tag", "x", "--tag", "y", "--mode", "b"],
      { shipping_address_id: "s1", count: 3, price: 2.5, dry_run: true, tag: ["x", "y"], mode: "b" }],
  ];
  for (const [what, schema, argv, args] of cases) {
    test(what, () => {
      expect(parseArgv(schema, argv)).toEqual({ help: false, args: args as Args });
    });
  }
});

test("--help in option position asks for the schema", () => {
  expect(parseArgv(fs, ["--help"])).toEqual({ help: true });
  expect(parseArgv(fs, ["--path", "/x", "--help"])).toEqual({ help: true });
});

test("parsed arguments are frozen", () => {
  const r = parseArgv(every, ["--shipping-address-id", "s", "--tag", "x"]);
  expect(r.help).toBe(false);
  if (!r.help) {
    expect(Object.isFrozen(r.args)).toBe(true);
    expect(Object.isFrozen(r.args.tag)).toBe(true);
  }
});

describe("usage errors (exit 64)", () => {
  const cases: [string, CapabilitySchema, string[], string][] = [
    ["an unknown option", fs, ["--path", "/x", "--content", "c", "--mode", "x"], "unknown option '--mode'"],
    ["an abbreviation", fs, ["--pat", "/x", "--content", "c"], "unknown option '--pat'"],
    ["snake_case instead of kebab-case", every, ["--shipping_address_id", "s"], "unknown option '--shipping_address_id'"],
    ["a duplicated option", fs, ["--path", "/x", "--path", "/y", "--content", "c"], "option '--path' is given twice"],
    ["a duplicated flag", every, ["--shipping-address-id", "s", "--dry-run", "--dry-run"], "option '--dry-run' is given twice"],
    ["a missing value", fs, ["--content", "c", "--path"], "option '--path' needs a value"],
    ["a missing required option", fs, ["--path", "/x"], "missing required option '--content'"],
    ["a stray argument", fs, ["/x"], "unexpected argument '/x'"],
    ["an argument after --", fs, ["--path", "/x", "--content", "c", "--", "--path"], "unexpected argument '--path'"],
    ["a single-dash option", fs, ["-p", "/x"], "unexpected argument '-p'"],
    ["a value outside the enum", fs, ["--path", "/x", "--content", "c", "--encoding", "utf8"], "option '--encoding' must be one of 'utf-8', 'base64'"],
    ["a flag given a value", every, ["--shipping-address-id", "s", "--dry-run=yes"], "option '--dry-run' is a flag and takes no value"],
    ["a non-integer", every, ["--shipping-address-id", "s", "--count", "3.5"], "option '--count' needs a whole number, not '3.5'"],
    ["an integer in hex", every, ["--shipping-address-id", "s", "--count", "0x3"], "option '--count' needs a whole number, not '0x3'"],
    ["an integer out of range", every, ["--shipping-address-id", "s", "--count", "11"], "option '--count' must be at most 10"],
    ["too many list items", every, ["--shipping-address-id", "s", "--tag", "a", "--tag", "b", "--tag", "c"], "option '--tag' is given more than 2 times"],
    ["a path over maxLength", fs, ["--path", `/${"a".repeat(4096)}`, "--content", "c"], "option '--path' must be at most 4096 characters"],
  ];
  for (const [what, schema, argv, message] of cases) {
    test(what, () => {
      let err: unknown;
      try {
        parseArgv(schema, argv);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(VivError);
      expect((err as VivError).code).toBe(64);
      expect((err as VivError).message).toBe(message);
    });
  }
});
