// `workspace "PATH" owner="keep"`: the loader's table (what it accepts, what it refuses with
// file:line), and, as root, the lending itself as the nspawn backend calls it: an idmapped mount
// whose owner is the container's jail user, a plain --bind of it, nothing left after release.
// The jail-side behaviour is tested against real jails in test/bats/workspace-owner.bats.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CATALOG } from "../capabilities/registry.ts";
import { loadPolicyText } from "../policy/load.ts";
import { JAIL } from "../lib/paths.ts";
import { lendWorkspace, sweepLentWorkspaces } from "../lib/workspace-idmap.ts";
import { VivError } from "../lib/exit.ts";
import { problemsOf } from "./policy-problems.ts";

const load = (text: string) => loadPolicyText([{ file: "p.kdl", text }], CATALOG);
const problems = (text: string) => problemsOf(() => load(text));

describe("the loader", () => {
  const cases: [string, string, "keep" | undefined][] = [
    ["owner=\"keep\"", `workspace "/srv/op/src" owner="keep"`, "keep"],
    ["owner=\"agent\", the default said out loud", `workspace "/srv/op/src" owner="agent"`, undefined],
    ["no owner", `workspace "/srv/op/src"`, undefined],
  ];
  for (const [what, node, owner] of cases) {
    test(`accepts ${what}`, () => {
      const a = load(`agent "a" {\n  ${node}\n}`).agents.get("a")!;
      expect(a.workspace).toBe("/srv/op/src");
      expect(a.workspaceOwner).toBe(owner);
    });
  }

  const refused: [string, string, string][] = [
    ["an unknown owner", `workspace "/srv/op/src" owner="root"`, `p.kdl:2: workspace owner 'root' is not "agent" or "keep"`],
    ["an owner given as a number", `workspace "/srv/op/src" owner=1000`, `p.kdl:2: workspace owner '1000' is not "agent" or "keep"`],
    ["another property", `workspace "/srv/op/src" mode="keep"`, "p.kdl:2: unknown property 'mode' on 'workspace' (expected 'owner')"],
    ["no path", `workspace owner="keep"`, "p.kdl:2: 'workspace' takes one absolute path"],
    ["two paths", `workspace "/srv/a/b" "/srv/c/d" owner="keep"`, "p.kdl:2: 'workspace' takes one absolute path"],
    ["a broad directory, kept or not", `workspace "/srv" owner="keep"`, "p.kdl:2: workspace '/srv' refused: is a top-level directory; name a directory at least two levels deep"],
  ];
  for (const [what, node, first] of refused) {
    test(`refuses ${what}`, () => {
      expect(problems(`agent "a" {\n  ${node}\n}`)[0]).toBe(first);
    });
  }
});

const root = process.getuid?.() === 0;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function scratch() {
  const d = mkdtempSync(join(tmpdir(), "viv-idmap-"));
  dirs.push(d);
  chmodSync(d, 0o711);
  const ws = join(d, "ws");
  mkdirSync(ws);
  writeFileSync(join(ws, "mine"), "owner's\n");
  chownSync(join(ws, "mine"), 4242, 4243);
  chownSync(ws, 4242, 4243);
  const state = join(d, "state");
  mkdirSync(join(state, "agents", "idm-ns"), { recursive: true });
  return { ws, state };
}

const mounted = (path: string) => readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => l.split(" ")[4] === path);

describe.if(root)("lending, as root", () => {
  test("lendWorkspace maps the owner onto the uid and gid it is given, and the host's view stays the owner's", () => {
    const { ws, state } = scratch();
    const shift = 0x50000;
    const lent = lendWorkspace(ws, state, "idm-ns", { uid: shift + JAIL.uid, gid: shift + JAIL.gid });
    try {
      expect(lent.owner).toEqual({ uid: 4242, gid: 4243 });
      expect(mounted(lent.path)).toBe(true);
      const seen = statSync(join(lent.path, "mine"));
      expect([seen.uid, seen.gid]).toEqual([shift + JAIL.uid, shift + JAIL.gid]);
      // The host's own view is unchanged.
      expect(statSync(join(ws, "mine")).uid).toBe(4242);
    } finally {
      expect(lent.release()).toEqual([]);
    }
    expect(mounted(lent.path)).toBe(false);
    expect(() => statSync(lent.path)).toThrow();
  });

  test("a sweep leaves the mount of a live run alone", () => {
    const { ws, state } = scratch();
    const lent = lendWorkspace(ws, state, "idm-ns", { uid: 61001, gid: 61001 });
    try {
      expect(sweepLentWorkspaces(state)).toEqual([]);
      expect(mounted(lent.path)).toBe(true);
    } finally {
      lent.release();
    }
  });

  test("a missing workspace is refused with 78 and is not created", () => {
    const { state } = scratch();
    const missing = join(state, "..", "nowhere");
    let err: unknown;
    try {
      lendWorkspace(missing, state, "idm-ns", { uid: 61001, gid: 61001 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VivError);
    expect((err as VivError).code).toBe(78);
    expect((err as VivError).message).toBe(`workspace '${missing}' does not exist; owner="keep" lends a directory its owner made`);
  });
});
