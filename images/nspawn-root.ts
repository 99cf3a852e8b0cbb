// The root directory of an nspawn jail: a skeleton, not a distribution. It holds only empty
// mount points and the merged-/usr symlinks as the host has them; the system itself is the
// host's /usr, bound read-only, with the loader's files of /etc (the same lists as the bubblewrap
// jail, images/bwrap-layout.ts), so both backends run the same programs. A debootstrapped Debian
// would need a mirror and hundreds of megabytes for what the host's /usr already gives; the
// skeleton is a few entries, written once by the build (dist/nspawn-root) and shared read-only by
// every jail. systemd-nspawn refuses a directory without an os-release, so a copy of the host's
// lies under usr/, where the bound /usr hides it.
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ETC_FILES, SYSTEM_DIRS, TOP_LINKS } from "./bwrap-layout.ts";

/** Mount points nspawn and the jail's first process (images/jail-init.c) mount over. */
const MOUNT_POINTS = ["proc", "sys", "dev", "run", "tmp", "workspace", "etc"];
/** Files the broker writes for each agent (its etc directory), bound over these. */
export const AGENT_ETC = ["passwd", "group"];
const OS_RELEASE = ["/usr/lib/os-release", "/etc/os-release"];

/** Writes the skeleton at `dir`, replacing one that is there, in one rename. */
export function writeNspawnRoot(dir: string) {
  const tmp = `${dir}.new`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { mode: 0o755 });
  for (const d of MOUNT_POINTS) mkdirSync(join(tmp, d), { mode: 0o755 });
  for (const d of SYSTEM_DIRS) mkdirSync(join(tmp, d), { recursive: true, mode: 0o755 });
  const release = OS_RELEASE.find((f) => existsSync(f));
  if (!release) throw new Error("the host has no os-release, which systemd-nspawn needs");
  mkdirSync(join(tmp, "usr", "lib"), { recursive: true, mode: 0o755 });
  copyFileSync(release, join(tmp, "usr", "lib", "os-release"));
  for (const l of TOP_LINKS) {
    if (!existsSync(l)) continue;
    const st = lstatSync(l);
    if (st.isSymbolicLink()) symlinkSync(readlinkSync(l), join(tmp, l));
    else if (st.isDirectory()) mkdirSync(join(tmp, l), { mode: 0o755 });
  }
  for (const f of ETC_FILES) {
    if (!existsSync(f)) continue;
    if (statSync(f).isDirectory()) mkdirSync(join(tmp, f), { mode: 0o755 });
    else writeFileSync(join(tmp, f), "", { mode: 0o644 });
  }
  for (const f of AGENT_ETC) writeFileSync(join(tmp, "etc", f), "", { mode: 0o644 });
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}

/**
 * systemd-nspawn's arguments that bind the host's system part into the skeleton at `root`,
 * read-only: /usr, the top directories that are not symlinks on this host, and each loader file
 * of /etc that both the host and the skeleton have.
 */
export function nspawnSystemBinds(root: string): string[] {
  const binds: string[] = [];
  for (const d of SYSTEM_DIRS) binds.push(`--bind-ro=${d}`);
  for (const l of TOP_LINKS) {
    if (!existsSync(l) || lstatSync(l).isSymbolicLink()) continue;
    if (existsSync(join(root, l)) && !lstatSync(join(root, l)).isSymbolicLink()) binds.push(`--bind-ro=${l}`);
  }
  const etc = new Set(readdirSync(join(root, "etc")).map((f) => `/etc/${f}`));
  for (const f of ETC_FILES) if (etc.has(f) && existsSync(f)) binds.push(`--bind-ro=${f}`);
  return binds;
}
