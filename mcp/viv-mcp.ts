// viv-mcp: the MCP bridge, a stdio MCP server that runs inside an agent's jail. It offers the
// agent's granted capabilities (/run/vivary/capabilities.json) as MCP tools with their own JSON
// Schemas, and forwards each tools/call to the broker as a CALL on one persistent connection
// (./broker-link.ts). A denial, a usage error or a capability's failure comes back as a tool
// result with isError and the one-line diagnostic, so the model can correct itself; the broker
// decides and records every call, exactly as for a shell call through viv-stub. Built by
// build.ts into one JavaScript file that the host's Node runs (the jail sees the host's /usr).
// It uses the SDK's low-level Server: McpServer takes zod schemas, and the point here is to hand
// the capabilities' JSON Schemas through unchanged.
import { readFileSync, unwatchFile, watchFile } from "node:fs";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { CallToolRequestSchema, ListToolsRequestSchema, McpError, ErrorCode } from "@modelcontextprotocol/sdk/types.js";
import { version as VERSION } from "../package.json";
import { Exit } from "../lib/exit.ts";
import { JAIL } from "../lib/paths.ts";
import { BrokerLink, LinkError } from "./broker-link.ts";
import { ArgumentError, errorResult, parseCapabilityList, toArgv, toTools, toToolResult, type GrantedCapability } from "./tools.ts";

const NAME = "viv-mcp";
const USAGE = `usage: ${NAME}\n\nThe MCP server of a vivary jail: speaks MCP over stdin and stdout, offers the agent's\ngranted capabilities as tools and forwards each call to the broker. See viv-mcp(1).\n`;
const INSTRUCTIONS =
  "Each tool is a vivary capability of this agent. The operator's policy governs every call: a call outside the grant is refused with an error result that says why, so change the arguments or give up; do not retry the same call.";
/** How often the capability list is looked at for a change (a policy reload rewrites it). */
const WATCH_MS = 1_000;
/** How often a call whose client gave a progress token is reported still in progress. */
const PROGRESS_MS = 5_000;
/** Tool names as MCP allows them; anything else is not a capability. */
const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

function fail(code: number, line: string): never {
  process.stderr.write(`${NAME}: ${line}\n`);
  process.exit(code);
}

/** The granted capabilities, read afresh each time: a policy reload rewrites the file. */
function granted(): GrantedCapability[] {
  let text: string;
  try {
    text = readFileSync(JAIL.capabilities, "utf8");
  } catch (e) {
    throw new Error(`cannot read '${JAIL.capabilities}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; ${NAME} runs inside a vivary jail`);
  }
  try {
    return parseCapabilityList(text);
  } catch (e) {
    throw new Error(`cannot use '${JAIL.capabilities}': ${(e as Error).message}`);
  }
}

async function main(argv: string[]) {
  if (argv.length === 1 && argv[0] === "--help") return void process.stdout.write(USAGE);
  if (argv.length === 1 && argv[0] === "--version") return void process.stdout.write(`${NAME} ${VERSION}\n`);
  if (argv.length > 0) fail(Exit.usage, `unexpected argument '${argv[0]}' (try '${NAME} --help')`);
  try {
    granted();
  } catch (e) {
    fail(Exit.unavailable, (e as Error).message);
  }

  const link = new BrokerLink(JAIL.socket);
  let busy = 0;
  let ending = false;
  const stop = () => (link.close(), unwatchFile(JAIL.capabilities), process.exit(0));
  // Once the handlers are done, their replies are written before the next turn of the loop.
  const stopWhenIdle = () => ending && busy === 0 && setImmediate(stop);
  const server = new Server({ name: NAME, version: VERSION }, { capabilities: { tools: { listChanged: true } }, instructions: INSTRUCTIONS });

  server.setRequestHandler(ListToolsRequestSchema, () => {
    try {
      return { tools: toTools(granted()) };
    } catch (e) {
      throw new McpError(ErrorCode.InternalError, (e as Error).message);
    }
  });

  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    busy++;
    // A client that asked for progress hears that the call is still with the broker, so that a
    // timeout it resets on progress does not cut off a call an operator has yet to approve.
    const token = req.params._meta?.progressToken;
    let beats = 0;
    const heartbeat =
      token === undefined
        ? null
        : setInterval(() => {
            beats++;
            const message = `${req.params.name}: still with the broker after ${(beats * PROGRESS_MS) / 1000} s (an operator's approval may be pending)`;
            void extra.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress: beats, message } }).catch(() => undefined);
          }, PROGRESS_MS);
    try {
      return await callTool(req.params.name, req.params.arguments);
    } finally {
      if (heartbeat) clearInterval(heartbeat);
      busy--;
      stopWhenIdle();
    }
  });

  async function callTool(name: string, args: Record<string, unknown> | undefined) {
    if (!TOOL_NAME.test(name)) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${name}`);
    // A name missing from the list still goes to the broker, which refuses and records it; the
    // list may also be older than a policy reload that granted it.
    let schema: GrantedCapability["schema"] | undefined;
    try {
      schema = granted().find((c) => c.name === name)?.schema;
    } catch {
      schema = undefined;
    }
    let callArgv: string[];
    try {
      callArgv = toArgv(name, schema, args);
    } catch (e) {
      if (e instanceof ArgumentError) return errorResult(e.message);
      throw e;
    }
    try {
      return toToolResult(name, await link.call(name, callArgv));
    } catch (e) {
      if (e instanceof LinkError) return errorResult(e.message);
      throw e;
    }
  }

  // The broker replaces the file by a rename when the policy changes: tell the client to list again.
  let listed = readFileSync(JAIL.capabilities, "utf8");
  watchFile(JAIL.capabilities, { interval: WATCH_MS, persistent: false }, () => {
    let now: string;
    try {
      now = readFileSync(JAIL.capabilities, "utf8");
    } catch {
      return;
    }
    if (now === listed) return;
    listed = now;
    void server.sendToolListChanged().catch(() => undefined);
  });

  const transport = new StdioServerTransport();
  // The client closed our input: answer what is in flight (it may still read), then exit.
  process.stdin.on("end", () => ((ending = true), stopWhenIdle()));
  server.onclose = stop;
  await server.connect(transport);
}

main(process.argv.slice(2)).catch((e) => fail(Exit.internal, `internal error: ${(e as Error).message}`));
