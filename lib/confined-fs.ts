// Kernel-confined file reads, listings and writes for capabilities that touch host directories. Every path step is
// opened with openat2(2) and RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
// RESOLVE_NO_XDEV relative to the previous directory's descriptor, so a directory swapped for a
// symlink between any check and the write is refused by the kernel, not by a check that can
// race. The file is replaced by rename(2) of a fully written, fsynced temporary in the same
// directory: readers see the old file or the new one, never a half-written one. A read opens the
// file without blocking and checks the descriptor it got (a regular file with one link) before it
// reads a byte; a listing reads names through the directory's descriptor and opens each
// subdirectory below the one before it, so a swapped symlink is refused there too.
// What a write creates (the file, and any directory on its way) belongs to the owner of the
// directory it is made in, not to the broker: run as root, the broker would otherwise leave
// root's files in an operator's tree (a `workspace owner="keep"` one above all) or an agent's.
// Buffers go to libc as typed arrays, never as pointer numbers: a number does not keep its buffer
// alive, and a collection between building the arguments and the call frees it (a write once
// failed with ENOENT because renameat read a freed temporary name).
import { randomBytes } from "node:crypto";
import { fchownSync, fdatasync, fstatSync, fsync, opendirSync, readdirSync, readSync } from "node:fs";
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
  NOCTTY: 0o400,
  NONBLOCK: 0o4000,
};
const RESOLVE = { NO_XDEV: 0x01, NO_MAGICLINKS: 0x02, NO_SYMLINKS: 0x04, BENEATH: 0x08 };
const CONFINED = RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS | RESOLVE.NO_MAGICLINKS | RESOLVE.NO_XDEV;
const SYS_openat2 = 437;
const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_EMPTY_PATH = 0x1000;
// st_size and st_mtim sit at the same offsets in both architectures' struct stat.
const STAT = ARCH === "x64" ? { size: 144, mode: 24, nlink: 16, nlink64: true } : { size: 128, mode: 16, nlink: 20, nlink64: false };
const ST_SIZE = 48;
const ST_MTIM = 88;
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

interface Stat {
  type: number;
  nlink: number;
  size: number;
  mtimeMs: number;
}

function decodeStat(buf: Uint8Array): Stat {
  const v = new DataView(buf.buffer);
  const mode = v.getUint32(STAT.mode, true);
  const nlink = STAT.nlink64 ? Number(v.getBigUint64(STAT.nlink, true)) : v.getUint32(STAT.nlink, true);
  const size = Number(v.getBigInt64(ST_SIZE, true));
  const mtimeMs = Number(v.getBigInt64(ST_MTIM, true)) * 1000 + Math.floor(Number(v.getBigInt64(ST_MTIM + 8, true)) / 1e6);
  return { type: mode & S_IFMT, nlink, size, mtimeMs };
}

function lstatAt(dirfd: number, name: string): Stat | null {
  const buf = new Uint8Array(STAT.size);
  if (libc.fstatat(dirfd, cstr(name), buf, AT_SYMLINK_NOFOLLOW) !== 0) {
    const e = errno();
    if (e === 2) return null;
    throw new VivError(Exit.internal, `cannot stat '${name}': ${errName(e)}`);
  }
  return decodeStat(buf);
}

/** fstat(2) of an open descriptor, as fstatat(fd, "", AT_EMPTY_PATH). */
function fstatFd(fd: number, shown: string): Stat {
  const buf = new Uint8Array(STAT.size);
  if (libc.fstatat(fd, cstr(""), buf, AT_EMPTY_PATH) !== 0) throw new VivError(Exit.internal, `cannot stat '${shown}': ${errName(errno())}`);
  return decodeStat(buf);
}

/**
 * Gives what `fd` names to the owner and group of the directory `dirfd`, when this process is
 * root (it may not otherwise); through descriptors only, so no name swapped meanwhile is followed.
 */
function takeDirectoryOwner(dirfd: number, fd: number, shown: string) {
  if (process.geteuid?.() !== 0) return;
  try {
    const dir = fstatSync(dirfd);
    fchownSync(fd, dir.uid, dir.gid);
  } catch (e) {
    throw new VivError(Exit.internal, `cannot give '${shown}' its directory's owner: ${(e as NodeJS.ErrnoException).code}`);
  }
}

/** Opens one directory step below `dirfd`, creating it if missing; refuses anything but a real directory. */
function stepInto(dirfd: number, name: string, shown: string, create: boolean): number {
  // No O_NOFOLLOW: with it a symlink fails as ENOTDIR; RESOLVE_NO_SYMLINKS makes it ELOOP.
  const flags = O.RDONLY | O.DIRECTORY | O.CLOEXEC;
  let made = false;
  for (let attempt = 0; attempt < 2; attempt++) {
    const fd = openat2(dirfd, name, flags, 0, CONFINED);
    if (fd >= 0) {
      if (made) {
        try {
          takeDirectoryOwner(dirfd, fd, shown);
        } catch (e) {
          libc.close(fd);
          throw e;
        }
      }
      return fd;
    }
    const e = -fd;
    if (e === 40) throw new EscapeAttempt(`'${shown}' is a symlink`);
    if (e === 18) throw new EscapeAttempt(`'${shown}' crosses a mount point`);
    if (e === 20) {
      const st = lstatAt(dirfd, name);
      const type = st ? FILE_TYPES[st.type] : undefined;
      throw new EscapeAttempt(`'${shown}' is ${type ? `${type}, not a directory` : "not a directory"}`);
    }
    if (e === 2 && !create) throw dataError(`'${shown}' does not exist`);
    if (e !== 2) throw new VivError(Exit.internal, `cannot open '${shown}': ${errName(e)}`);
    if (libc.mkdirat(dirfd, cstr(name), 0o755) === 0) made = true;
    else if (errno() !== 17) throw new VivError(Exit.internal, `cannot create directory '${shown}': ${errName(errno())}`);
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
      takeDirectoryOwner(dirfd, fd, shown);
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

/** Opens `root/relative…` as a directory, step by step, each below the one before; returns every fd opened (the last is the directory). */
function walkDirs(root: string, relative: readonly string[], fds: number[]): { dirfd: number; shown: string } {
  let dirfd = openRoot(root);
  fds.push(dirfd);
  let shown = root;
  for (const c of relative) {
    shown = `${shown}/${c}`;
    dirfd = stepInto(dirfd, c, shown, false);
    fds.push(dirfd);
  }
  return { dirfd, shown };
}

/** Refuses anything but a regular file with a single link: the same refusals as a write. */
function refuseNonFile(st: Stat, shown: string) {
  if (st.type !== 0o100000) throw new EscapeAttempt(`'${shown}' is ${FILE_TYPES[st.type] ?? "not a regular file"}`);
  if (st.nlink > 1) throw new EscapeAttempt(`'${shown}' has ${st.nlink} hard links`);
}

export interface ReadResult {
  /** The bytes read: the whole file, or its first `maxBytes` bytes. */
  data: Uint8Array;
  /** The file's size when it was opened. */
  size: number;
  /** True when the file holds more than `maxBytes` bytes. */
  truncated: boolean;
}

/**
 * Reads at most `maxBytes` of the regular file `root/relative…`, confined like a write. Symlinks,
 * hard links, special files and mount points are refused; a FIFO or device is never opened for
 * reading (its type is checked before the open, and the open never blocks), and what the
 * descriptor turns out to be is checked again before a byte is read.
 */
export function readFileConfined(root: string, relative: readonly string[], maxBytes: number): ReadResult {
  if (relative.length === 0) throw dataError("path names the granted directory itself");
  const fds: number[] = [];
  try {
    const { dirfd, shown: parent } = walkDirs(root, relative.slice(0, -1), fds);
    const leaf = relative[relative.length - 1]!;
    const shown = `${parent}/${leaf}`;
    const st = lstatAt(dirfd, leaf);
    if (!st) throw dataError(`'${shown}' does not exist`);
    if (st.type === 0o040000) throw dataError(`'${shown}' is a directory`);
    refuseNonFile(st, shown);
    const fd = openat2(dirfd, leaf, O.RDONLY | O.NONBLOCK | O.NOCTTY | O.NOFOLLOW | O.CLOEXEC, 0, CONFINED);
    if (fd < 0) {
      const e = -fd;
      if (e === 40) throw new EscapeAttempt(`'${shown}' is a symlink`);
      if (e === 18) throw new EscapeAttempt(`'${shown}' crosses a mount point`);
      if (e === 2) throw dataError(`'${shown}' does not exist`);
      throw new VivError(Exit.internal, `cannot open '${shown}': ${errName(e)}`);
    }
    fds.push(fd);
    // The name may have been swapped since the lstat: what was opened is what counts.
    const opened = fstatFd(fd, shown);
    refuseNonFile(opened, shown);
    const buf = Buffer.alloc(Math.min(maxBytes, opened.size) + 1);
    let got = 0;
    while (got < buf.length) {
      let n: number;
      try {
        n = readSync(fd, buf, got, buf.length - got, got);
      } catch (e) {
        throw new VivError(Exit.unavailable, `cannot read '${shown}': ${(e as NodeJS.ErrnoException).code}`);
      }
      if (n === 0) break;
      got += n;
    }
    // A full buffer (one byte beyond the cap, or a file that grew past its size) means there is more.
    return { data: buf.subarray(0, Math.min(got, maxBytes)), size: opened.size, truncated: got === buf.length };
  } finally {
    for (const fd of fds) libc.close(fd);
  }
}

export type EntryType = "file" | "directory" | "symlink" | "fifo" | "socket" | "block-device" | "char-device" | "unknown";
const ENTRY_TYPES: Record<number, EntryType> = {
  0o140000: "socket",
  0o120000: "symlink",
  0o100000: "file",
  0o060000: "block-device",
  0o040000: "directory",
  0o020000: "char-device",
  0o010000: "fifo",
};

export interface DirEntry {
  /** The path below the listed directory, '/'-separated. */
  name: string;
  type: EntryType;
  /** Bytes, for a regular file only. */
  size?: number;
  /** Last modification, ISO 8601 in UTC. */
  mtime: string;
}

export interface ListLimits {
  /** How many levels below the listed directory a recursive listing descends (1 = its children's children). */
  maxDepth: number;
  /** How many entries a listing holds at most. */
  maxEntries: number;
  /** A bound on the summed length of the names, so the result fits one reply. */
  maxNameBytes: number;
}

export interface ListResult {
  entries: DirEntry[];
  truncated: boolean;
}

/**
 * Lists the directory `root/relative…` (the granted directory itself when `relative` is empty),
 * confined like a write: names are read through the directory's descriptor, each entry is
 * lstat'ed below that descriptor (a symlink is listed as one and never followed), and a recursive
 * listing opens each subdirectory below its parent's descriptor with openat2, so a directory
 * swapped for a symlink or a mount point is refused by the kernel. Entries are sorted by name
 * within each directory, a directory before its contents. Bounded by `limits`; `truncated` says
 * when a bound cut the listing short.
 */
export function listDirConfined(root: string, relative: readonly string[], recursive: boolean, limits: ListLimits): ListResult {
  const fds: number[] = [];
  const entries: DirEntry[] = [];
  let nameBytes = 0;
  let truncated = false;
  const visit = (dirfd: number, shown: string, prefix: string, depth: number): void => {
    const names: string[] = [];
    const dir = opendirSync(`/proc/self/fd/${dirfd}`);
    try {
      for (let d = dir.readSync(); d; d = dir.readSync()) {
        // Read one past what can still be listed: more than that is only counted as truncation.
        if (names.length > limits.maxEntries - entries.length) {
          truncated = true;
          break;
        }
        names.push(d.name);
      }
    } finally {
      dir.closeSync();
    }
    names.sort();
    for (const name of names) {
      if (entries.length >= limits.maxEntries) return void (truncated = true);
      const path = prefix ? `${prefix}/${name}` : name;
      nameBytes += Buffer.byteLength(path);
      if (nameBytes > limits.maxNameBytes) return void (truncated = true);
      const st = lstatAt(dirfd, name);
      if (!st) continue; // gone since it was read
      const type = ENTRY_TYPES[st.type] ?? "unknown";
      entries.push({ name: path, type, ...(type === "file" ? { size: st.size } : {}), mtime: new Date(st.mtimeMs).toISOString() });
      if (!recursive || type !== "directory") continue;
      if (depth >= limits.maxDepth) {
        truncated = true;
        continue;
      }
      const sub = stepInto(dirfd, name, `${shown}/${name}`, false);
      try {
        visit(sub, `${shown}/${name}`, path, depth + 1);
      } finally {
        libc.close(sub);
      }
      if (truncated && entries.length >= limits.maxEntries) return;
    }
  };
  try {
    const { dirfd: parent, shown: parentShown } = walkDirs(root, relative.slice(0, -1), fds);
    let dirfd = parent;
    let shown = parentShown;
    const leaf = relative[relative.length - 1];
    if (leaf !== undefined) {
      shown = `${parentShown}/${leaf}`;
      const st = lstatAt(parent, leaf);
      if (!st) throw dataError(`'${shown}' does not exist`);
      if (st.type === 0o100000) throw dataError(`'${shown}' is a regular file, not a directory`);
      dirfd = stepInto(parent, leaf, shown, false);
      fds.push(dirfd);
    }
    visit(dirfd, shown, "", 0);
    return { entries, truncated };
  } finally {
    for (const fd of fds) libc.close(fd);
  }
}
