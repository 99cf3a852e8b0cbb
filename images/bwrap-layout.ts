// The bubblewrap jail image: which host system directories an agent sees, read-only. Only what
// programs need to run (the /usr tree and the loader's files); nothing else of the host's /etc,
// no /home, no /var, no /srv. Merged-/usr symlinks are reproduced as the host has them.
import { existsSync, lstatSync, readlinkSync } from "node:fs";

export const SYSTEM_DIRS = ["/usr"];
export const TOP_LINKS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
export const ETC_FILES = ["/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/nsswitch.conf", "/etc/localtime"];

/** bwrap arguments that lay out the read-only system part of the jail. */
export function systemLayout(): string[] {
  const args: string[] = [];
  for (const d of SYSTEM_DIRS) args.push("--ro-bind", d, d);
  for (const l of TOP_LINKS) {
    if (!existsSync(l)) continue;
    const st = lstatSync(l);
    if (st.isSymbolicLink()) args.push("--symlink", readlinkSync(l), l);
    else if (st.isDirectory()) args.push("--ro-bind", l, l);
  }
  for (const f of ETC_FILES) if (existsSync(f)) args.push("--ro-bind", f, f);
  return args;
}
