// A real Radicale (Debian's package) for tests: started on 127.0.0.1 port 0 with its storage, its
// htpasswd user (apache2-utils' htpasswd, apr1 md5) and its config in a temporary directory, its
// port read from its own log, its calendars made with MKCALENDAR (RFC 4791 5.3.1). stop() ends it
// and removes the directory. The one way tests and scripts/demo.sh start one; as a program:
// bun test/radicale.ts --user U --password-file F [--calendar NAME]... prints the user's calendar
// home URL and serves until SIGTERM or SIGINT.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Radicale {
  /** http://127.0.0.1:PORT */
  origin: string;
  /** The user's calendar home: ORIGIN/USER/ */
  home: string;
  dir: string;
  log(): string;
  stop(): Promise<void>;
}

export const basicAuth = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

export async function startRadicale(opts: { user: string; password: string; calendars: string[] }): Promise<Radicale> {
  const dir = mkdtempSync(join(tmpdir(), "vivary-radicale-"));
  const htpasswd = Bun.spawn(["htpasswd", "-c", "-i", "-m", join(dir, "users"), opts.user], { stdin: new TextEncoder().encode(`${opts.password}\n`), stdout: "ignore", stderr: "pipe", env: {} });
  if ((await htpasswd.exited) !== 0) throw new Error(`htpasswd failed: ${await new Response(htpasswd.stderr).text()}`);
  writeFileSync(join(dir, "config"), [
    "[server]", "hosts = 127.0.0.1:0",
    "[auth]", "type = htpasswd", `htpasswd_filename = ${join(dir, "users")}`, "htpasswd_encryption = md5",
    "[storage]", `filesystem_folder = ${join(dir, "collections")}`,
    "[rights]", "type = owner_only",
    "[logging]", "level = info",
    "",
  ].join("\n"));
  const proc = Bun.spawn(["/usr/bin/radicale", "--config", join(dir, "config")], { stdout: "ignore", stderr: "pipe", env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" } });
  let log = "";
  const port = new Promise<number>((resolve, reject) => {
    const reader = proc.stderr.getReader();
    const decoder = new TextDecoder();
    (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return reject(new Error(`radicale exited before listening: ${log}`));
        log += decoder.decode(value);
        const m = /Listening on '\[?127\.0\.0\.1\]?:([0-9]+)'/.exec(log);
        if (m) resolve(Number(m[1]));
      }
    })().catch(reject);
  });
  const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`radicale did not listen within 15 s: ${log}`)), 15_000).unref());
  let origin: string;
  try {
    origin = `http://127.0.0.1:${await Promise.race([port, deadline])}`;
  } catch (e) {
    proc.kill();
    await proc.exited;
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const stop = async () => {
    proc.kill();
    await proc.exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const home = `${origin}/${opts.user}/`;
  for (const c of opts.calendars) {
    const r = await fetch(`${home}${c}/`, { method: "MKCALENDAR", headers: { authorization: basicAuth(opts.user, opts.password) } });
    if (r.status !== 201) {
      await stop();
      throw new Error(`MKCALENDAR ${c}: HTTP ${r.status}`);
    }
  }
  return { origin, home, dir, log: () => log, stop };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const values = (flag: string) => args.flatMap((a, i) => (a === flag && i + 1 < args.length ? [args[i + 1]!] : []));
  const [user] = values("--user");
  const [passwordFile] = values("--password-file");
  if (!user || !passwordFile) {
    process.stderr.write("radicale: usage: radicale.ts --user U --password-file F [--calendar NAME]...\n");
    process.exit(64);
  }
  const r = await startRadicale({ user, password: readFileSync(passwordFile, "utf8").replace(/\n$/, ""), calendars: values("--calendar") });
  const end = () => void r.stop().then(() => process.exit(0));
  process.on("SIGTERM", end);
  process.on("SIGINT", end);
  process.stdout.write(`${r.home}\n`);
}
