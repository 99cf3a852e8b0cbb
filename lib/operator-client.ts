// Client side of the operator socket (broker/operator.ts): one JSON request, one JSON reply.
import { existsSync } from "node:fs";
import { Exit, VivError } from "./exit.ts";

export async function operatorRequest(sock: string, req: object): Promise<Record<string, any>> {
  if (!existsSync(sock)) throw new VivError(Exit.unavailable, `no broker serves this state directory (no '${sock}')`);
  return await new Promise((resolve, reject) => {
    let buf = "";
    Bun.connect({
      unix: sock,
      socket: {
        open(s) {
          s.write(`${JSON.stringify(req)}\n`);
        },
        data(s, chunk) {
          buf += Buffer.from(chunk).toString("utf8");
          const nl = buf.indexOf("\n");
          if (nl >= 0) {
            s.end();
            resolve(JSON.parse(buf.slice(0, nl)));
          }
        },
        close() {
          if (!buf.includes("\n")) reject(new VivError(Exit.unavailable, "broker closed the operator connection"));
        },
        connectError() {
          reject(new VivError(Exit.unavailable, `no broker answers on '${sock}'`));
        },
      },
    }).catch(() => reject(new VivError(Exit.unavailable, `no broker answers on '${sock}'`)));
  });
}

/** True when a broker answers on the operator socket. */
export async function brokerAlive(sock: string): Promise<boolean> {
  try {
    const r = await operatorRequest(sock, { op: "ps" });
    return r.ok === true;
  } catch {
    return false;
  }
}
