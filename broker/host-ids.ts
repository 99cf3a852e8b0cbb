// Checks that the host uids vivary gives its agents belong to nobody else: not a user in
// /etc/passwd, not a group in /etc/group, and not inside any user's subordinate range in
// /etc/subuid or /etc/subgid (rootless containers map those). A jail running under someone
// else's uid could signal or read that someone's processes and files. The same holds for the uid
// an agent's browser runs as (broker/browser.ts) and for a registered capability's (policy/external.ts).
import { existsSync, readFileSync } from "node:fs";
import type { Policy } from "../policy/model.ts";
import { browserUid } from "./browser.ts";

interface Claim {
  lo: number;
  hi: number;
  who: string;
}

function claims(file: string, parse: (f: string[]) => Claim | null): Claim[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => parse(l.split(":")))
    .filter((c): c is Claim => c !== null);
}

const idLine = (what: string, idField: number) => (f: string[]) => {
  const id = Number(f[idField]);
  return Number.isInteger(id) ? { lo: id, hi: id, who: `${what} '${f[0]}'` } : null;
};

const rangeLine = (what: string) => (f: string[]) => {
  const lo = Number(f[1]);
  const n = Number(f[2]);
  return Number.isInteger(lo) && Number.isInteger(n) ? { lo, hi: lo + n - 1, who: `the ${what} range of '${f[0]}'` } : null;
};

/** The first conflict as a one-line reason, or null. `etc` is for tests. */
export function hostIdConflict(policy: Policy, etc = "/etc"): string | null {
  const all = [
    ...claims(`${etc}/passwd`, idLine("user", 2)),
    ...claims(`${etc}/group`, idLine("group", 2)),
    ...claims(`${etc}/subuid`, rangeLine("subuid")),
    ...claims(`${etc}/subgid`, rangeLine("subgid")),
  ];
  for (const a of policy.agents.values()) {
    const c = all.find((c) => a.uid >= c.lo && a.uid <= c.hi);
    if (c) return `${a.where}: agent '${a.name}' would run as host uid ${a.uid}, which is ${c.who}; rename the agent`;
    if (!a.grants.has("web-page-read")) continue;
    const b = browserUid(a.uid);
    const cb = all.find((c) => b >= c.lo && b <= c.hi);
    if (cb) return `${a.where}: the browser of agent '${a.name}' would run as host uid ${b}, which is ${cb.who}; rename the agent`;
  }
  for (const x of policy.external?.values() ?? []) {
    const c = all.find((c) => x.uid >= c.lo && x.uid <= c.hi);
    if (c) return `${x.where}: capability '${x.name}' would run as host uid ${x.uid}, which is ${c.who}; rename the capability`;
  }
  return null;
}
