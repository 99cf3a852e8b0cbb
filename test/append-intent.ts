// Appends a call's intent to STATE/audit.db through the broker's own append path, with no
// outcome after it: the state a broker killed mid-call leaves. Lets a test check, without racing
// a SIGKILL, what the next broker start does with it.
//
//   bun test/append-intent.ts STATE AGENT PATH CONTENT
import { join } from "node:path";
import { AuditStore } from "../broker/audit.ts";
import { argvDigest } from "../broker/pipeline.ts";

const [state, agent, path, content] = process.argv.slice(2) as [string, string, string, string];
const audit = new AuditStore(join(state, "audit.db"));
const argv = ["--path", path, "--content", content];
const args = { path, content, encoding: "utf-8" };
const seq = await audit.append({ agent, kind: "call", cap: "fs-file-write", fields: { conn: audit.head.seq + 1000, args, args_sha256: argvDigest(argv) } });
audit.close();
process.stdout.write(`${seq}\n`);
