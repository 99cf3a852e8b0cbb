// Kernel-confined file writes for capabilities that touch host directories. Every path step is
// opened with openat2(2) and RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
// RESOLVE_NO_XDEV relative to the previous directory's descriptor, so a directory swapped for a
// symlink between any check and the write is refused by the kernel, not by a check that can
// race. The file is replaced by rename(2) of a fully written, fsynced temporary in the same
// directory: readers see the old file or the new one, never a half-written one.
// Buffers go to libc as typed arrays, never as pointer numbers: a number does not keep its buffer
// alive, and a collection between building the arguments and the call frees it (a write once
// failed with ENOENT because renameat read a freed temporary name).
import { randomBytes } from "node:crypto";
import { fdatasync, fsync, readdirSync } from "node:fs";
import { promisify } from "node:util";
import { dataError, Exit, unavailableError, VivError } from "./exit.ts";
import { errno, libc } from "./libc.ts";

const ARCH = process.arch === "arm64" ? "arm64" : "x64";
/** open(2) flags differ between the two architectures vivary supports. */
const O = {
  RDONLY: 0,
  WRONLY: 1,
  CREAT: 0o100,
  EXCL: 0o200,
  CLOEXEC: 0o2000000,
  DIRECTORY: ARCH === "x64" ? 0o200000 : 0o40000,
  NOFOLLOW: ARCH === "x64" ? 0o400000 : 0o100000,
};
const RESOLVE = { NO_XDEV: 0x01, NO_MAGICLINKS: 0x02, NO_SYMLINKS: 0x04, BENEATH: 0x08 };
const CONFINED = RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS | RESOLVE.NO_MAGICLINKS | RESOLVE.NO_XDEV;
const SYS_openat2 = 437;
const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const STAT = ARCH === "x64" ? { size: 144, mode: 24, nlink: 16, nlink64: true } : { size: 128, mode: 16, nlink: 20, nlink64: false };
const S_IFMT = 0o170000;
const FILE_TYPES: Record<number, string> = {
  0o140000: "a socket",
  0o120000: "a symlink",
  0o100000: "a regular file",
  0o060000: "a block device",
  0o040000: "a directory",
  0o020000: "a character device",
  0o010000: "a FIFO",
};
const ERRNO: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 13: "EACCES", 17: "EEXIST", 18: "EXDEV", 20: "ENOTDIR", 21: "EISDIR",
  28: "ENOSPC", 36: "ENAMETOOLONG", 40: "ELOOP", 122: "EDQUOT", 30: "EROFS",
};


/** Syncs run on the thread pool so a slow disk never stalls the broker's event loop. */
const fdatasyncAsync = promisify(fdatasync);
const fsyncAsync = promisify(fsync);

const errName = (e: number) => ERRNO[e] ?? `errno ${e}`;
const cstr = (s: string) => Buffer.from(`${s}\0`);

/** Thrown for a refusal that is a security event (symlink, hardlink, special file, escape). */
export class EscapeAttempt extends VivError {
  constructor(message: string) {
    super(Exit.denied, message);
  }
}

function openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number {
  const how = new BigUint64Array([BigInt(flags), BigInt(mode), BigInt(resolve)]);
  const p = cstr(path);
  const fd = Number(libc.syscall(SYS_openat2, dirfd, p, how, 24n));
  return fd >= 0 ? fd : -errno();
}

function lstatAt(dirfd: number, name: string): { type: number; nlink: number } | null {
  const buf = new Uint8Array(STAT.size);
  if (libc.fstatat(dirfd, cstr(name), buf, AT_SYMLINK_NOFOLLOW) !== 0) {
    const e = errno();
    if (e === 2) return null;
    throw new VivError(Exit.internal, `cannot stat '${name}': ${errName(e)}`);
  }
  const v = new DataView(buf.buffer);
  const mode = v.getUint32(STAT.mode, true);
  const nlink = STAT.nlink64 ? Number(v.getBigUint64(STAT.nlink, true)) : v.getUint32(STAT.nlink, true);
  return { type: mode & S_IFMT, nlink };
}

/** Opens one directory step below `dirfd`, creating it if missing; refuses anything but a real directory. */
function stepInto(dirfd: number, name: string, shown: string, create: boolean): number {
  // No O_NOFOLLOW: with it a symlink fails as ENOTDIR; RESOLVE_NO_SYMLINKS makes it ELOOP.
  const flags = O.RDONLY | O.DIRECTORY | O.CLOEXEC;
  for (let attempt = 0; attempt < 2; attempt++) {
    const fd = openat2(dirfd, name, flags, 0, CONFINED);
    if (fd >= 0) return fd;
    const e = -fd;
    if (e === 40) throw new EscapeAttempt(`'${shown}' is a symlink`);
    if (e === 18) throw new EscapeAttempt(`'${shown}' crosses a mount point`);
    if (e === 20) {
      const st = lstatAt(dirfd, name);
      const type = st ? FILE_TYPES[st.type] : undefined;
      throw new EscapeAttempt(`'${shown}' is ${type ? `${type}, not a directory` : "not a directory"}`);
    }
    if (e !== 2 || !create) throw new VivError(Exit.internal, `cannot open '${shown}': ${errName(e)}`);
    if (libc.mkdirat(dirfd, cstr(name), 0o755) !== 0 && errno() !== 17) {
      throw new VivError(Exit.internal, `cannot create directory '${shown}': ${errName(errno())}`);
    }
  }
  throw new VivError(Exit.internal, `cannot open '${shown}': it keeps changing`);
}

/** Opens a granted root directory; the operator's path itself must be free of symlinks. */
function openRoot(root: string): number {
  const fd = openat2(AT_FDCWD, root, O.RDONLY | O.DIRECTORY | O.CLOEXEC, 0, RESOLVE.NO_SYMLINKS | RESOLVE.NO_MAGICLINKS);
  if (fd >= 0) return fd;
  const e = -fd;
  if (e === 2) throw unavailableError(`granted path '${root}' does not exist`);
  if (e === 40) throw new EscapeAttempt(`granted path '${root}' contains a symlink`);
  throw unavailableError(`cannot open granted path '${root}': ${errName(e)}`);
}

export const MAX_WRITE_BYTES = 1024 * 1024;
/** The names writeFileConfined gives its temporaries, and nothing else. */
const TEMPORARY = /^\.viv-[0-9a-f]{16}\.tmp$/;

/**
 * Removes the temporaries that writes into `root/relativeDir…` left when the broker was killed
 * mid-write, confined exactly like a write. Only regular files named as writeFileConfined names
 * them are removed. Returns how many; a directory that does not exist holds none.
 */
export function removeTemporaries(root: string, relativeDir: readonly string[]): number {
  const fds: number[] = [];
  try {
    let dirfd = openRoot(root);
    fds.push(dirfd);
    let shown = root;
    for (const c of relativeDir) {
      shown = `${shown}/${c}`;
      const st = lstatAt(dirfd, c);
      if (!st) return 0;
      dirfd = stepInto(dirfd, c, shown, false);
      fds.push(dirfd);
    }
    let removed = 0;
    // The directory is listed through its descriptor, never by path again.
    for (const name of readdirSync(`/proc/self/fd/${dirfd}`)) {
      if (!TEMPORARY.test(name) || lstatAt(dirfd, name)?.type !== 0o100000) continue;
      if (libc.unlinkat(dirfd, cstr(name), 0) === 0) removed++;
    }
    return removed;
  } finally {
    for (const fd of fds) libc.close(fd);
  }
}

/**
 * Atomically replaces `root/relative…` with `data`. `root` is a granted directory, `relative` the
 * already-validated components below it (no '.', '..' or empty parts). Returns bytes written.
 */
export async function writeFileConfined(root: string, relative: readonly string[], data: Uint8Array): Promise<number> {
  if (relative.length === 0) throw dataError("path names the granted directory itself");
  if (data.length > MAX_WRITE_BYTES) throw dataError(`content of ${data.length} bytes exceeds the ${MAX_WRITE_BYTES}-byte limit`);
  const fds: number[] = [];
  try {
    let dirfd = openRoot(root);
    fds.push(dirfd);
    let shown = root;
    for (const c of relative.slice(0, -1)) {
      shown = `${shown}/${c}`;
      dirfd = stepInto(dirfd, c, shown, true);
      fds.push(dirfd);
    }
    const leaf = relative[relative.length - 1]!;
    shown = `${shown}/${leaf}`;
    const st = lstatAt(dirfd, leaf);
    if (st && st.type !== 0o100000) throw new EscapeAttempt(`'${shown}' is ${FILE_TYPES[st.type] ?? "not a regular file"}`);
    if (st && st.nlink > 1) throw new EscapeAttempt(`'${shown}' has ${st.nlink} hard links`);

    const tmp = `.viv-${randomBytes(8).toString("hex")}.tmp`;
    const fd = openat2(dirfd, tmp, O.WRONLY | O.CREAT | O.EXCL | O.NOFOLLOW | O.CLOEXEC, 0o644, CONFINED);
    if (fd < 0) throw new VivError(Exit.internal, `cannot create a temporary file in '${shown.slice(0, -leaf.length - 1)}': ${errName(-fd)}`);
    let renamed = false;
    try {
      libc.fchmod(fd, 0o644);
      for (let at = 0; at < data.length; ) {
        const n = Number(libc.write(fd, data.subarray(at), BigInt(data.length - at)));
        if (n <= 0) throw new VivError(Exit.unavailable, `cannot write '${shown}': ${errName(errno())}`);
        at += n;
      }
      await fdatasyncAsync(fd).catch((e: NodeJS.ErrnoException) => {
        throw new VivError(Exit.unavailable, `cannot sync '${shown}': ${e.code}`);
      });
      if (libc.renameat(dirfd, cstr(tmp), dirfd, cstr(leaf)) !== 0) {
        const e = errno();
        if (e === 21) throw new EscapeAttempt(`'${shown}' is a directory`);
        throw new VivError(Exit.internal, `cannot replace '${shown}': ${errName(e)}`);
      }
      renamed = true;
      await fsyncAsync(dirfd).catch((e: NodeJS.ErrnoException) => {
        throw new VivError(Exit.unavailable, `replaced '${shown}' but cannot sync its directory: ${e.code}`);
      });
    } finally {
      libc.close(fd);
      if (!renamed) libc.unlinkat(dirfd, cstr(tmp), 0);
    }
    return data.length;
  } finally {
    for (const fd of fds) libc.close(fd);
  }
}
