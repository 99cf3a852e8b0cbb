// The broker's Unix sockets appear ready: each is bound under a temporary name beside its own,
// given its owner and mode, and only then renamed onto its name. So a socket found at its path is
// already accepting connections, and only from whom it should: a client that waits for the path
// (viv-stub and viv-model-relay in a jail while the broker restarts, viv ps, a test) never meets
// the ECONNREFUSED of a socket bound but not yet listening, nor the EACCES of one not yet its
// agent's.
import { chmodSync, chownSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/**
 * Listens on `path` through `listen(at)`, which binds `at`. `uid` (when given) owns the socket
 * when the broker runs as root; a broker run by another user keeps its sockets, as its jails run as that user.
 */
export function listenInPlace<T extends { stop(closeActive?: boolean): unknown }>(path: string, access: { mode: number; uid?: number }, listen: (at: string) => T): T {
  const at = join(dirname(path), `.${basename(path)}`);
  rmSync(at, { force: true });
  const server = listen(at);
  try {
    if (access.uid !== undefined && process.getuid?.() === 0) chownSync(at, access.uid, access.uid);
    chmodSync(at, access.mode);
    renameSync(at, path);
  } catch (e) {
    server.stop(true);
    rmSync(at, { force: true });
    throw e;
  }
  return server;
}
