// The operator console of `viv approvals --watch` on a terminal, drawn with Ink: the pending
// calls, live; the selected one in full; `a` to approve it after typing the first four
// characters of its id, `d` to deny it with a reason. Every value on screen went through the
// log's escaping (pendingLine, showValue) first, so nothing an agent sent can move the cursor,
// recolour, hide or reorder what the operator reads. Runs only when stdin and stdout are
// terminals; input that is not a terminal never reaches this file.
import { Box, render, Text, useApp, useInput } from "ink";
import { createElement as h, useEffect, useState } from "react";
import { formatFields, showValue } from "../lib/audit-format.ts";
import { operatorRequest } from "../lib/operator-client.ts";
import { fetchPending, secondsLeft, type Pending } from "./approvals.ts";

const POLL_MS = 250;
const CONFIRM_CHARS = 4;

type Mode = { kind: "browse" } | { kind: "approve"; id: string; typed: string } | { kind: "deny"; id: string; typed: string };

function Console({ sock, operator }: { sock: string; operator: string }) {
  const { exit } = useApp();
  const [pending, setPending] = useState<Pending[]>([]);
  const [selected, setSelected] = useState(0);
  const [mode, setMode] = useState<Mode>({ kind: "browse" });
  const [status, setStatus] = useState("");
  const [gone, setGone] = useState(false);

  useEffect(() => {
    let stop = false;
    const tick = async () => {
      while (!stop) {
        try {
          setPending(await fetchPending(sock));
          setGone(false);
        } catch {
          setGone(true);
        }
        await Bun.sleep(POLL_MS);
      }
    };
    void tick();
    return () => void (stop = true);
  }, [sock]);

  const current = pending[Math.min(selected, pending.length - 1)];
  const decide = async (op: "approve" | "deny", id: string, reason?: string) => {
    const r = await operatorRequest(sock, { op, id, operator, reason }).catch((e: Error) => ({ ok: false, error: e.message }));
    setStatus(r.ok ? `${op === "approve" ? "approved" : "denied"} ${id}` : `not done: ${r.error}`);
  };

  useInput((input, key) => {
    if (mode.kind === "browse") {
      if (input === "q") return exit();
      if (key.upArrow || input === "k") setSelected((i) => Math.max(0, i - 1));
      if (key.downArrow || input === "j") setSelected((i) => Math.min(pending.length - 1, i + 1));
      if (current && input === "a") setMode({ kind: "approve", id: current.id, typed: "" });
      if (current && input === "d") setMode({ kind: "deny", id: current.id, typed: "" });
      return;
    }
    if (key.escape) return setMode({ kind: "browse" });
    // Keys typed fast can arrive in one chunk with the Enter: type the text, then confirm.
    const cr = input.search(/[\r\n]/);
    if (cr > 0) mode.typed = (mode.typed + input.slice(0, cr)).slice(0, 200);
    if (key.return || cr >= 0) {
      if (mode.kind === "approve") {
        if (mode.typed === mode.id.slice(0, CONFIRM_CHARS)) void decide("approve", mode.id);
        else setStatus(`not approved: typed '${showValue(mode.typed)}', expected the first ${CONFIRM_CHARS} characters of the id`);
      } else void decide("deny", mode.id, mode.typed || undefined);
      return setMode({ kind: "browse" });
    }
    if (key.backspace || key.delete) return setMode({ ...mode, typed: mode.typed.slice(0, -1) });
    if (input && !key.ctrl && !key.meta && !key.tab) setMode({ ...mode, typed: (mode.typed + input).slice(0, 200) });
  });

  const rows = pending.map((p, i) =>
    h(Text, { key: p.id, inverse: p === current }, `${p === current ? ">" : " "} ${p.id}  ${showValue(p.agent)}  ${p.cap}  risk=${p.risk}  ${secondsLeft(p)}s  ${showValue(p.target)}`),
  );
  const prompt =
    mode.kind === "approve"
      ? `approve ${mode.id}: type its first ${CONFIRM_CHARS} characters, then Enter (Esc cancels): ${showValue(mode.typed)}`
      : mode.kind === "deny"
        ? `deny ${mode.id}: reason, then Enter (Esc cancels): ${showValue(mode.typed)}`
        : "↑/↓ select · a approve · d deny · q quit";
  return h(
    Box,
    { flexDirection: "column" },
    h(Text, { bold: true }, `vivary approvals: ${pending.length} pending${gone ? " (broker not answering)" : ""}`),
    ...(rows.length ? rows : [h(Text, { key: "none", dimColor: true }, "  nothing waits for a decision")]),
    h(Text, null, " "),
    ...(current ? formatFields({ id: current.id, agent: current.agent, cap: current.cap, risk: current.risk, target: current.target, args: current.args, request_sha256: current.request_sha256 }).map((f, i) => h(Text, { key: `f${i}` }, `  ${f}`)) : []),
    h(Text, null, " "),
    h(Text, { color: "cyan" }, prompt),
    h(Text, null, status),
  );
}

export async function runConsole(sock: string, operator: string): Promise<number> {
  const app = render(h(Console, { sock, operator }), { exitOnCtrlC: true });
  await app.waitUntilExit();
  return 0;
}
