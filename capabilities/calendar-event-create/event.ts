// The event a call asks for, checked and written as iCalendar. Times are ISO 8601 date-times
// that must carry their offset (an instant, never a floating local time); they are converted to
// UTC here and written as UTC, so the server and every client agree on the instant. The title is
// refused if it holds anything that could break a line or mislead a reader. The iCalendar text
// is produced by ical-generator, which escapes and folds it (RFC 5545), never by hand.
import ical from "ical-generator";
import { Exit, VivError } from "../../lib/exit.ts";

/** The longest event allowed, start to end. */
export const MAX_DURATION_MS = 31 * 86_400_000;

const DATE_TIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?(.*)$/;
const OFFSET = /^(?:([Zz])|([+-])([0-9]{2})(?::?([0-9]{2}))?)$/;

const bad = (m: string) => new VivError(Exit.data, m);

/**
 * Parses an ISO 8601 date-time with an offset (Z, +HH:MM, +HHMM or +HH) into epoch milliseconds.
 * Every field is range-checked (no 24:00, no leap second, no February 30, offsets within
 * -12:00..+14:00) and the year is 1970 to 9999. `what` names the option in the error.
 */
export function parseInstant(what: string, v: string): number {
  const m = DATE_TIME.exec(v);
  if (!m) throw bad(`${what} '${v}' is not an ISO 8601 date-time (YYYY-MM-DDTHH:MM[:SS] and an offset)`);
  const [, y, mo, d, h, mi, s, frac, rest] = m as unknown as string[];
  if (rest === "") throw bad(`${what} '${v}' has no offset: add Z or +HH:MM`);
  const off = OFFSET.exec(rest!);
  if (!off) throw bad(`${what} '${v}' has an offset that is not Z, +HH:MM, +HHMM or +HH`);
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s ?? "0"].map(Number) as [number, number, number, number, number, number];
  const ms = frac ? Math.floor(Number(`0.${frac}`) * 1000) : 0;
  const local = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const back = new Date(local);
  if (year < 1970 || hour > 23 || minute > 59 || second > 59 || back.getUTCFullYear() !== year || back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day) {
    throw bad(`${what} '${v}' is not a valid date and time (year 1970 to 9999)`);
  }
  let offsetMin = 0;
  if (!off[1]) {
    const oh = Number(off[3]);
    const om = Number(off[4] ?? "0");
    offsetMin = (off[2] === "-" ? -1 : 1) * (oh * 60 + om);
    if (om > 59 || offsetMin > 14 * 60 || offsetMin < -12 * 60) throw bad(`${what} '${v}' has an offset outside -12:00 to +14:00`);
  }
  return local - offsetMin * 60_000;
}

/** Control characters, line and paragraph separators, and bidirectional embeddings and overrides. */
const UNSAFE_TEXT = /[\p{Cc}\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

export interface EventRequest {
  title: string;
  start: number;
  end: number;
}

/** Checks a call's title and times; throws a VivError (65) with the first problem. */
export function checkEvent(args: { title: string; start: string; end: string }): EventRequest {
  if (UNSAFE_TEXT.test(args.title)) throw bad("title has a control character, line break or bidirectional override");
  if (args.title.trim() === "") throw bad("title is blank");
  const start = parseInstant("start", args.start);
  const end = parseInstant("end", args.end);
  if (end <= start) throw bad(`end '${args.end}' is not after start '${args.start}'`);
  if (end - start > MAX_DURATION_MS) throw bad(`end '${args.end}' is more than 31 days after start '${args.start}'`);
  return { title: args.title, start, end };
}

/** One VCALENDAR holding one VEVENT, times in UTC, attendees as mailto: addresses. */
export function eventIcs(uid: string, ev: EventRequest, attendees: readonly string[], now = new Date()): string {
  const cal = ical({ prodId: { company: "vivary", product: "calendar-event-create" } });
  cal.createEvent({
    id: uid,
    stamp: now,
    start: new Date(ev.start),
    end: new Date(ev.end),
    summary: ev.title,
    attendees: attendees.map((email) => ({ email })),
  });
  return cal.toString();
}
