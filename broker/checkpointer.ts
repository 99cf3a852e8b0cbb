// The audit log's checkpointer: folds the WAL into the database file in a thread of its own, so
// that no call waits while SQLite copies pages and syncs the file. The store posts the log's path
// every few hundred commits; each request opens the file, runs a PASSIVE checkpoint (which never
// blocks the broker's writes) and closes it. A failure is left to the next request, and SQLite's
// own automatic checkpoint stays on as a backstop far above (broker/audit.ts).
import { Database } from "bun:sqlite";

declare const self: Worker;

self.onmessage = (e: MessageEvent<string>) => {
  let db: Database | null = null;
  try {
    db = new Database(e.data, { create: false, readwrite: true });
    db.exec("PRAGMA busy_timeout = 1000");
    db.query("PRAGMA wal_checkpoint(PASSIVE)").get();
  } catch {
    // The next request tries again; the backstop bounds the WAL meanwhile.
  } finally {
    db?.close();
  }
};
