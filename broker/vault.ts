// The credential vault: secrets sealed with AES-256-GCM (node:crypto) in STATE/vault/secrets.json,
// under a key kept in a file of its own outside the state directory. Each secret has its own
// random nonce and is bound to its id (the GCM additional data), so a sealed value cannot be moved
// to another id unnoticed. Writers (`viv secret set`, `viv secret rm`) take a lock and replace the
// file atomically, so the operator can change secrets whether or not a broker runs; the broker
// only reads, and a secret removed is gone for the next call. Nothing here logs.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import {
  closeSync, constants, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { Exit, VivError } from "../lib/exit.ts";
import { tryLockExclusive } from "../lib/libc.ts";
import { stateLayout } from "../lib/paths.ts";
import { Secret } from "../lib/secret.ts";
import { SECRET_ID } from "../policy/model.ts";
import { isWithin, pathComponents } from "../policy/scope.ts";

/** Shorter values cannot be scrubbed from output without mangling it (see broker/scrub.ts). */
export const MIN_SECRET_BYTES = 8;
export const MAX_SECRET_BYTES = 16 * 1024;
const KEY_BYTES = 32;
const LOCK_WAIT_MS = 5_000;
const FORMAT_VERSION = 1;

interface Sealed {
  created: string;
  updated: string;
  nonce: string;
  tag: string;
  data: string;
}

interface VaultFile {
  version: number;
  cipher: "aes-256-gcm";
  key_id: string;
  secrets: Record<string, Sealed>;
}

export interface SecretInfo {
  id: string;
  created: string;
  updated: string;
  last_used: string | null;
}

const unavailable = (m: string) => new VivError(Exit.unavailable, m);

/** Checks an id given by the operator or a policy; returns why it is refused, or null. */
export function refuseSecretId(id: string): string | null {
  return SECRET_ID.test(id) ? null : `secret id '${id}' must match ${SECRET_ID.source}`;
}

function checkId(id: string) {
  const why = refuseSecretId(id);
  if (why) throw new VivError(Exit.usage, why);
}

/** The key's fingerprint, kept beside the data so a wrong key is told apart from tampering. */
function keyId(key: Buffer): string {
  return createHash("sha256").update("vivary vault key id\0").update(key).digest("hex").slice(0, 16);
}

const aad = (id: string) => Buffer.from(`vivary-vault-v${FORMAT_VERSION}\0${id}`);

function fsyncDir(dir: string) {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a file next to its final name and renames it over, durably: readers see old or new. */
function replaceFile(path: string, text: string, durable: boolean) {
  const tmp = `${path}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, text);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  if (durable) fsyncDir(dirname(path));
}

export class Vault {
  readonly dir: string;
  readonly file: string;
  private readonly usedDir: string;

  constructor(
    readonly state: string,
    readonly keyPath: string,
  ) {
    this.dir = stateLayout(state).vault;
    this.file = join(this.dir, "secrets.json");
    this.usedDir = join(this.dir, "used");
    const k = pathComponents(keyPath);
    const s = pathComponents(state);
    if (typeof k === "string") throw new VivError(Exit.config, `vault key '${keyPath}': ${k}`);
    if (typeof s !== "string" && isWithin(k, s)) {
      throw new VivError(Exit.config, `vault key '${keyPath}' is inside the state directory '${state}'; keep it apart (VIVARY_VAULT_KEY)`);
    }
  }

  /** Seals a secret under an id, replacing any older value. Returns whether it was new. */
  set(id: string, value: string): "created" | "replaced" {
    checkId(id);
    const bytes = Buffer.byteLength(value);
    if (bytes < MIN_SECRET_BYTES) throw new VivError(Exit.data, `secret '${id}' is shorter than ${MIN_SECRET_BYTES} bytes, too short to be scrubbed from output reliably`);
    if (bytes > MAX_SECRET_BYTES) throw new VivError(Exit.data, `secret '${id}' is longer than ${MAX_SECRET_BYTES} bytes`);
    const key = this.key(true);
    return this.locked(() => {
      const v = this.read(key);
      const now = new Date().toISOString();
      const nonce = randomBytes(12);
      const c = createCipheriv("aes-256-gcm", key, nonce).setAAD(aad(id));
      const data = Buffer.concat([c.update(value, "utf8"), c.final()]);
      const prior = v.secrets[id];
      v.secrets[id] = { created: prior?.created ?? now, updated: now, nonce: nonce.toString("base64"), tag: c.getAuthTag().toString("base64"), data: data.toString("base64") };
      replaceFile(this.file, `${JSON.stringify(v, null, 2)}\n`, true);
      return prior ? "replaced" : "created";
    });
  }

  /** Removes a secret; a call that needs it is denied from then on. */
  remove(id: string) {
    checkId(id);
    this.locked(() => {
      const v = this.read(null);
      if (!v.secrets[id]) throw new VivError(Exit.data, `no secret '${id}' in the vault`);
      delete v.secrets[id];
      replaceFile(this.file, `${JSON.stringify(v, null, 2)}\n`, true);
      rmSync(join(this.usedDir, id), { force: true });
    });
  }

  /** Ids and metadata, never a value; needs no key. */
  list(): SecretInfo[] {
    const v = this.read(null);
    return Object.keys(v.secrets).sort().map((id) => {
      const s = v.secrets[id]!;
      return { id, created: s.created, updated: s.updated, last_used: this.lastUsed(id) };
    });
  }

  /** Opens one secret. Throws a VivError that names the id and why, never the value. */
  get(id: string): Secret {
    const v = this.read(null);
    const s = v.secrets[id];
    if (!s) throw unavailable(`secret '${id}' is not in the vault`);
    const key = this.key(false);
    if (v.key_id !== keyId(key)) throw unavailable(`vault '${this.file}' was sealed with another key than '${this.keyPath}'`);
    try {
      const d = createDecipheriv("aes-256-gcm", key, Buffer.from(s.nonce, "base64")).setAAD(aad(id));
      d.setAuthTag(Buffer.from(s.tag, "base64"));
      return new Secret(Buffer.concat([d.update(Buffer.from(s.data, "base64")), d.final()]).toString("utf8"), id);
    } catch {
      throw new VivError(Exit.data, `secret '${id}' cannot be opened: authentication failed (the vault file was altered)`);
    }
  }

  /** Notes when a secret was last handed to a call; metadata only, so not synced to disk. */
  markUsed(id: string) {
    mkdirSync(this.usedDir, { recursive: true, mode: 0o700 });
    replaceFile(join(this.usedDir, id), `${new Date().toISOString()}\n`, false);
  }

  private lastUsed(id: string): string | null {
    try {
      return readFileSync(join(this.usedDir, id), "utf8").trim() || null;
    } catch {
      return null;
    }
  }

  /** The vault file, checked; an empty vault when there is none yet. With a key: sealed with it. */
  private read(key: Buffer | null): VaultFile {
    let text: string;
    try {
      text = readFileSync(this.file, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return { version: FORMAT_VERSION, cipher: "aes-256-gcm", key_id: key ? keyId(key) : "", secrets: {} };
      throw unavailable(`vault '${this.file}' cannot be read: ${code ?? (e as Error).message}`);
    }
    let v: VaultFile;
    try {
      v = JSON.parse(text) as VaultFile;
    } catch {
      throw unavailable(`vault '${this.file}' is not valid JSON`);
    }
    const sealedOk = (s: unknown) =>
      !!s && typeof s === "object" && ["created", "updated", "nonce", "tag", "data"].every((k) => typeof (s as Record<string, unknown>)[k] === "string");
    if (!v || v.version !== FORMAT_VERSION || v.cipher !== "aes-256-gcm" || typeof v.key_id !== "string" || !v.secrets || typeof v.secrets !== "object"
      || !Object.entries(v.secrets).every(([id, s]) => SECRET_ID.test(id) && sealedOk(s))) {
      throw unavailable(`vault '${this.file}' is not a version ${FORMAT_VERSION} vault`);
    }
    if (key) {
      if (Object.keys(v.secrets).length === 0) v.key_id = keyId(key);
      else if (v.key_id !== keyId(key)) throw unavailable(`vault '${this.file}' was sealed with another key than '${this.keyPath}'`);
    }
    return v;
  }

  /** The key: 32 bytes in a regular file of mode 0600 owned by this user; created on first set. */
  private key(create: boolean): Buffer {
    let fd: number;
    try {
      fd = openSync(this.keyPath, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" || !create) throw unavailable(`vault key '${this.keyPath}' cannot be read: ${code ?? (e as Error).message}`);
      return this.createKey();
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw unavailable(`vault key '${this.keyPath}' is not a regular file`);
      if (st.mode & 0o077) throw unavailable(`vault key '${this.keyPath}' is open to other users (mode ${(st.mode & 0o777).toString(8)}); make it 0600`);
      if (st.uid !== process.getuid?.()) throw unavailable(`vault key '${this.keyPath}' belongs to uid ${st.uid}, not to this user`);
      const key = Buffer.alloc(KEY_BYTES + 1);
      const n = readSync(fd, key, 0, key.length, 0);
      if (n !== KEY_BYTES) throw unavailable(`vault key '${this.keyPath}' is not ${KEY_BYTES} bytes`);
      return key.subarray(0, KEY_BYTES);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Creates the key whole or not at all: written and synced under a name of this process's, then
   * linked to its own name, which fails if another writer's key got there first; that key is used.
   * So no reader ever sees a key file half written, and a crash leaves no empty one behind.
   */
  private createKey(): Buffer {
    const dir = dirname(this.keyPath);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const key = randomBytes(KEY_BYTES);
    const tmp = `${this.keyPath}.tmp-${process.pid}`;
    const failed = (e: unknown) => unavailable(`vault key '${this.keyPath}' cannot be created: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    rmSync(tmp, { force: true });
    let fd: number;
    try {
      fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (e) {
      throw failed(e);
    }
    try {
      try {
        writeSync(fd, key);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      linkSync(tmp, this.keyPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") return this.key(false);
      throw failed(e);
    } finally {
      rmSync(tmp, { force: true });
    }
    fsyncDir(dir);
    return key;
  }

  /** Runs fn holding the vault's lock, waiting a bounded time for another writer. */
  private locked<T>(fn: () => T): T {
    mkdirSync(this.state, { recursive: true, mode: 0o711 });
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const fd = openSync(join(this.dir, "lock"), constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    try {
      const deadline = performance.now() + LOCK_WAIT_MS;
      while (!tryLockExclusive(fd)) {
        if (performance.now() > deadline) throw new VivError(Exit.temporary, `vault '${this.dir}' is locked by another writer`);
        Bun.sleepSync(5);
      }
      return fn();
    } finally {
      closeSync(fd);
    }
  }
}

