// A scripted MCP client for the bridge's tests: the official SDK's Client over its
// StdioClientTransport, spawning the server command it is given, then running steps in order.
// Plain Node JavaScript; bundled (bun build --target=node) it also runs inside a jail.
//
//   node mcp-client.mjs STEPS-JSON -- CMD [ARG...]
//   STEPS-JSON: [{"op":"list"} | {"op":"raw-call","params":{...}}
//                | {"op":"call","name":N,"arguments":{...}[,"timeout":MS][,"progress":true]}
//                  (progress: ask for progress notifications, count them, restart the timeout on each)
//                | {"op":"parallel","calls":[{"name":N,"arguments":{...}},...]}   (sent all at once)
//                | {"op":"wait-tools-changed","ms":MS}]   (a notifications/tools/list_changed, within MS)
// Prints one JSON line when connected ({"op":"connected",protocolVersion,server,capabilities,instructions}),
// then one per step: {"op":"list","tools"} or {"op":"call","name","result"[,"progress":N]} or
// {"op":"parallel","results":[...]} or {"op":..,"error"}
// (a JSON-RPC error), then {"op":"closed"}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { CallToolResultSchema, ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const argv = process.argv.slice(2);
const sep = argv.indexOf("--");
if (sep !== 1 || argv.length < 3) {
  process.stderr.write("usage: mcp-client.mjs STEPS-JSON -- CMD [ARG...]\n");
  process.exit(64);
}
const steps = JSON.parse(argv[0]);
const [command, ...args] = argv.slice(2);
const print = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

const transport = new StdioClientTransport({ command, args, env: { ...process.env }, stderr: "inherit" });
let protocolVersion = null;
transport.setProtocolVersion = (v) => (protocolVersion = v);
const client = new Client({ name: "vivary-test-client", version: "1.0.0" });
let toolsChanged = 0;
let onToolsChanged = () => {};
client.setNotificationHandler(ToolListChangedNotificationSchema, () => (toolsChanged++, onToolsChanged()));
await client.connect(transport);
print({ op: "connected", protocolVersion, server: client.getServerVersion(), capabilities: client.getServerCapabilities(), instructions: client.getInstructions() });

for (const step of steps) {
  try {
    if (step.op === "list") print({ op: "list", tools: (await client.listTools()).tools });
    else if (step.op === "call") {
      // With "progress", the call carries a progress token and its timeout restarts on each notification.
      let progress = 0;
      const opts = step.progress ? { onprogress: () => progress++, resetTimeoutOnProgress: true } : {};
      const result = await client.callTool({ name: step.name, arguments: step.arguments }, undefined, { timeout: step.timeout ?? 120_000, ...opts });
      print({ op: "call", name: step.name, result, ...(step.progress ? { progress } : {}) });
    }
    else if (step.op === "parallel") print({ op: "parallel", results: await Promise.all(step.calls.map((c) => client.callTool(c, undefined, { timeout: 120_000 }))) });
    else if (step.op === "wait-tools-changed") {
      if (toolsChanged === 0) await new Promise((resolve, reject) => ((onToolsChanged = resolve), setTimeout(() => reject(new Error("no tools/list_changed")), step.ms)));
      print({ op: "wait-tools-changed", seen: toolsChanged });
    } else if (step.op === "raw-call") print({ op: "raw-call", result: await client.request({ method: "tools/call", params: step.params }, CallToolResultSchema) });
    else throw new Error(`unknown step ${JSON.stringify(step)}`);
  } catch (e) {
    print({ op: step.op, name: step.name, error: e.message, code: e.code });
  }
}
await client.close();
print({ op: "closed" });
process.exit(0);
