// Tests of the credential vault (broker/vault.ts) on real files: a round trip, file modes, a key
// kept apart from the data, tampering and a wrong key told apart as clear errors, the id pattern,
// and concurrent writers (separate processes) that all land.
import { afterAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Vault } from "../broker/vault.ts";
import { Exit, VivError } from "../lib/exit.ts";

const root = mkdtempSync(join(tmpdir(), "viv-vault-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
function fresh() {
  const d = join(root, String(++n));
  return { state: join(d, "state"), key: join(d, "keys", "vault.key") };
}

const err = (fn: () => unknown): VivError => {
  try {
    fn();
  } catch (e) {
    if (e instanceof VivError) return e;
    throw e;
  }
  throw new Error("no error");
};

test("a secret set comes back the same, and is not in the file in plain text", () => {
  const { state, key } = fresh();
  const v = new Vault(state, key);
  expect(v.set("twilio-main", "canary-Tok3n/+=é")).toBe("created");
  expect(v.get("twilio-main").reveal()).toBe("canary-Tok3n/+=é");
  expect(readFileSync(v.file, "utf8")).not.toContain("canary");
  expect(v.set("twilio-main", "second-value")).toBe("replaced");
  expect(new Vault(state, key).get("twilio-main").reveal()).toBe("second-value");
});

test("the secret hides its value from JSON and string rendering", () => {
  const { state, key } = fresh();
  const v = new Vault(state, key);
  v.set("a", "canary-hidden-value");
  const s = v.get("a");
  expect(JSON.stringify({ s })).toBe('{"s":"[secret]"}');
  expect(`${s}`).toBe("[secret]");
  expect(Bun.inspect(s)).not.toContain("canary");
});

test("the key, the vault directory and its files are private to the owner", () => {
  const { state, key } = fresh();
  const v = new Vault(state, key);
  v.set("a", "value-long-enough");
  v.markUsed("a");
  expect(statSync(key).mode & 0o777).toBe(0o600);
  expect(statSync(join(key, "..")).mode & 0o777).toBe(0o700);
  expect(statSync(v.dir).mode & 0o777).toBe(0o700);
  expect(statSync(v.file).mode & 0o777).toBe(0o600);
  expect(statSync(join(v.dir, "used", "a")).mode & 0o777).toBe(0o600);
  expect(statSync(key).size).toBe(32);
});

test("list shows ids and metadata only, with when each was last used", () => {
  const { state, key } = fresh();
  const v = new Vault(state, key);
  v.set("b", "value-of-b-123");
  v.set("a", "value-of-a-123");
  v.markUsed("b");
  const l = v.list();
  expect(l.map((s) => s.id)).toEqual(["a", "b"]);
  expect(l[0]!.last_used).toBeNull();
  expect(l[1]!.last_used).toMatch(/^\d{4}-\d\d-\d\dT/);
  expect(JSON.stringify(l)).not.toContain("value-of");
});

test("removing a secret makes it unavailable", () => {
  const { state, key } = fresh();
  const v = new Vault(state, key);
  v.set("a", "value-long-enough");
  v.remove("a");
  expect(err(() => v.get("a")).message).toBe("secret 'a' is not in the vault");
  expect(err(() => v.get("a")).code).toBe(Exit.unavailable);
  const e = err(() => v.remove("a"));
  expect([e.code, e.message]).toEqual([Exit.data, "no secret 'a' in the vault"]);
});

test("a sealed value altered in the file fails authentication with a clear error", () => {
  const { state, key } = fresh();
  const v = new Vault(state, key);
  v.set("a", "value-long-enough");
  const f = JSON.parse(readFileSync(v.file, "utf8"));
  const data = Buffer.from(f.secrets.a.data, "base64");
  data[0]! ^= 1;
  f.secrets.a.data = data.toString("base64");
  writeFileSync(v.file, JSON.stringify(f));
  const e = err(() => v.get("a"));
  expect(e.message).toBe("secret 'a' cannot be opened: authentication failed (the vault file was altered)");
  expect(e.code).toBe(Exit.data);
});

test("a sealed value moved to another id fails authentication", () => {
  const { state, key } = fresh();
  const v = new Vault(state, key);
  v.set("a", "value-of-a-123");
  v.set("b", "value-of-b-123");
  const f = JSON.parse(readFileSync(v.file, "utf8"));
  f.secrets.b = f.secrets.a;
  writeFileSync(v.file, JSON.stringify(f));
  expect(err(() => v.get("b")).message).toBe("secret 'b' cannot be opened: authentication failed (the vault file was altered)");
  expect(v.get("a").reveal()).toBe("value-of-a-123");
});

test("another key is told apart from tampering", () => {
  const { state, key } = fresh();
  new Vault(state, key).set("a", "value-long-enough");
  const other = join(root, "other.key");
  writeFileSync(other, Buffer.alloc(32, 7), { mode: 0o600 });
  const e = err(() => new Vault(state, other).get("a"));
  expect(e.message).toBe(`vault '${join(state, "vault", "secrets.json")}' was sealed with another key than '${other}'`);
});

test("a key file open to others, of the wrong size, or missing is refused", () => {
  const { state, key } = fresh();
  const v = new Vault(state, key);
  v.set("a", "value-long-enough");
  chmodSync(key, 0o644);
  expect(err(() => v.get("a")).message).toBe(`vault key '${key}' is open to other users (mode 644); make it 0600`);
  chmodSync(key, 0o600);
  writeFileSync(key, Buffer.alloc(16));
  expect(err(() => v.get("a")).message).toBe(`vault key '${key}' is not 32 bytes`);
  rmSync(key);
  expect(err(() => v.get("a")).message).toBe(`vault key '${key}' cannot be read: ENOENT`);
});

test("a malformed vault file is refused, never read as empty", () => {
  const { state, key } = fresh();
  const v = new Vault(state, key);
  v.set("a", "value-long-enough");
  writeFileSync(v.file, "{");
  expect(err(() => v.get("a")).message).toBe(`vault '${v.file}' is not valid JSON`);
  writeFileSync(v.file, JSON.stringify({ version: 2, secrets: {} }));
  expect(err(() => v.list()).message).toBe(`vault '${v.file}' is not a version 1 vault`);
  expect(err(() => v.set("b", "value-long-enough")).code).toBe(Exit.unavailable);
});

test("a key inside the state directory is refused", () => {
  const { state } = fresh();
  const e = err(() => new Vault(state, join(state, "vault.key")));
  expect([e.code, e.message]).toEqual([Exit.config, `vault key '${join(state, "vault.key")}' is inside the state directory '${state}'; keep it apart (VIVARY_VAULT_KEY)`]);
});

test("ids must match the pattern, and values must be long enough to scrub", () => {
  const { state, key } = fresh();
  const v = new Vault(state, key);
  for (const id of ["", "A", "-a", "a/b", "../a", "a b", "x".repeat(65)]) expect(err(() => v.set(id, "value-long-enough")).code).toBe(Exit.usage);
  expect(err(() => v.set("a", "short")).message).toBe("secret 'a' is shorter than 8 bytes, too short to be scrubbed from output reliably");
  expect(v.set("a.b_c-9", "12345678")).toBe("created");
});

// The first writers of a vault also race to create its key: each must end up with the one key
// that won, never a key file another writer has not finished, so every writer lands.
test("concurrent writers in separate processes all land, the first ones racing to create the key", async () => {
  const script = `import { Vault } from ${JSON.stringify(join(import.meta.dir, "..", "broker", "vault.ts"))};
new Vault(process.argv[2], process.argv[3]).set(process.argv[4], "value-" + process.argv[4]);`;
  const file = join(root, "writer.ts");
  writeFileSync(file, script);
  for (let round = 0; round < 3; round++) {
    const { state, key } = fresh();
    const procs = Array.from({ length: 8 }, (_, i) => Bun.spawn([process.execPath, file, state, key, `id-${i}`], { stderr: "pipe" }));
    const failures = (await Promise.all(procs.map(async (p) => ((await p.exited) === 0 ? "" : await new Response(p.stderr).text())))).filter(Boolean);
    expect(failures).toEqual([]);
    const v = new Vault(state, key);
    expect(v.list().map((s) => s.id)).toEqual(Array.from({ length: 8 }, (_, i) => `id-${i}`));
    for (let i = 0; i < 8; i++) expect(v.get(`id-${i}`).reveal()).toBe(`value-id-${i}`);
    expect(readdirSync(dirname(key)).filter((n) => n.includes(".tmp-"))).toEqual([]);
  }
});
