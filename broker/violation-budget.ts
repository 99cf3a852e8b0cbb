// Protocol violations cost a bounded amount of audit per agent and time, so a hostile agent
// cannot fill the disk by breaking the protocol in a loop. Each agent has a window of
// VIOLATION_BUDGET.windowMs from its first violation: the first VIOLATION_BUDGET.records
// violations in it are recorded one by one; the rest are only counted, and one summary record
// (suppressed=N) is written when the window ends, or at the agent's next violation after it, or
// when the broker stops. Every violation still costs the connection: ERROR frame, then closed.
// Pure: the caller passes the time and writes the records.

export const VIOLATION_BUDGET = { records: 20, windowMs: 60_000 } as const;

/** What a window that ended held beyond its budget. */
export interface ViolationSummary {
  agent: string;
  suppressed: number;
  /** When the window began and ended (ms since the epoch). */
  since: number;
  until: number;
}

interface Window {
  start: number;
  recorded: number;
  suppressed: number;
}

export class ViolationBudget {
  private windows = new Map<string, Window>();

  constructor(private readonly budget: { records: number; windowMs: number } = VIOLATION_BUDGET) {}

  /**
   * One violation of `agent` at `now`: whether it gets its own record, and the summary of the
   * agent's previous window (when it ended with violations unrecorded), to be written first.
   */
  admit(agent: string, now: number): { record: boolean; summary: ViolationSummary | null } {
    let w = this.windows.get(agent);
    let summary: ViolationSummary | null = null;
    if (w && now - w.start >= this.budget.windowMs) {
      summary = this.summaryOf(agent, w);
      w = undefined;
    }
    if (!w) {
      w = { start: now, recorded: 0, suppressed: 0 };
      this.windows.set(agent, w);
    }
    if (w.recorded < this.budget.records) {
      w.recorded++;
      return { record: true, summary };
    }
    w.suppressed++;
    return { record: false, summary };
  }

  /** When the agent's current window ends (for a timer that writes its summary). */
  windowEnd(agent: string): number | null {
    const w = this.windows.get(agent);
    return w ? w.start + this.budget.windowMs : null;
  }

  /** Summaries of the windows that ended by `now`; those windows are closed. */
  due(now: number): ViolationSummary[] {
    const out: ViolationSummary[] = [];
    for (const [agent, w] of [...this.windows]) {
      if (now - w.start < this.budget.windowMs) continue;
      this.windows.delete(agent);
      const s = this.summaryOf(agent, w);
      if (s) out.push(s);
    }
    return out;
  }

  /** At a stop: the summaries of every open window with violations unrecorded, ending now. */
  flush(now: number): ViolationSummary[] {
    const out: ViolationSummary[] = [];
    for (const [agent, w] of this.windows) if (w.suppressed) out.push({ agent, suppressed: w.suppressed, since: w.start, until: now });
    this.windows.clear();
    return out;
  }

  private summaryOf(agent: string, w: Window): ViolationSummary | null {
    if (this.windows.get(agent) === w) this.windows.delete(agent);
    return w.suppressed ? { agent, suppressed: w.suppressed, since: w.start, until: w.start + this.budget.windowMs } : null;
  }
}

/** The one line a summary record gives as its reason. */
export function summaryReason(s: ViolationSummary, budget = VIOLATION_BUDGET): string {
  return `${s.suppressed} more protocol violation${s.suppressed === 1 ? "" : "s"} not recorded one by one (at most ${budget.records} records per agent per ${budget.windowMs / 1000} s)`;
}
