// The libc functions vivary calls directly through bun:ffi, in one place: the openat2-confined
// file operations (lib/confined-fs.ts) and flock, for the broker's lock on its state directory and
// the others' (the vault, a new workspace). Linux only.
import { dlopen, FFIType, read } from "bun:ffi";

export const libc = dlopen("libc.so.6", {
  syscall: { args: [FFIType.i64, FFIType.i64, FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  mkdirat: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  fstatat: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  renameat: { args: [FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  unlinkat: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  write: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  fchmod: { args: [FFIType.i32, FFIType.u32], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
}).symbols;

export const errno = (): number => read.i32(libc.__errno_location()!, 0);

const LOCK_EX = 2;
const LOCK_NB = 4;

/** Takes an exclusive lock on an open file, waiting for another holder to let go; false on an error. */
export function lockExclusive(fd: number): boolean {
  return libc.flock(fd, LOCK_EX) === 0;
}

/** Takes an exclusive lock on an open file without waiting; false when another process holds it. */
export function tryLockExclusive(fd: number): boolean {
  return libc.flock(fd, LOCK_EX | LOCK_NB) === 0;
}

