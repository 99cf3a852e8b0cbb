// calendar-event-create: one event in one granted calendar, through the grant's CalDAV provider.
// The scope is the calendars granted, the most attendees an event may have (attendees max=N)
// and the domains they may belong to (attendee-domain), matched on canonical addresses
// (policy/scope.ts). Bad input is refused before any request (65), a call outside the scope is
// denied (77), and the request itself belongs to the provider kind's module (providers/caldav.ts).
import { randomUUID } from "node:crypto";
import type { Capability, CapabilitySchema, Scopes } from "../../lib/capability.ts";
import { Exit, VivError } from "../../lib/exit.ts";
import { matchAttendees, matchCalendar } from "../../policy/scope.ts";
import { putCalendarEvent } from "../../providers/caldav.ts";
import { checkEvent, eventIcs } from "./event.ts";
import schemaJson from "./schema.json";
import type { CalendarEventCreateInput, CalendarEventCreateResult } from "./types.ts";

const chosenCalendar = (args: CalendarEventCreateInput, scopes: Scopes) => args.calendar ?? scopes.calendar?.[0] ?? "";
const chosenProvider = (args: CalendarEventCreateInput, scopes: Scopes) => args.provider ?? scopes.provider?.[0] ?? "";

/** The scope check: the reason for a denial, or null. Malformed attendees are left to run (65). */
function outsideScope(args: CalendarEventCreateInput, scopes: Scopes): string | null {
  const calendar = chosenCalendar(args, scopes);
  const why = matchCalendar(calendar, scopes.calendar ?? []);
  if (why) return `cannot create an event in calendar '${calendar}': ${why}`;
  const a = matchAttendees(args.attendees ?? [], scopes["attendee-domain"] ?? [], scopes.attendees ?? []);
  if (!a.ok && !a.data) return `cannot invite ${a.reason}`;
  const p = chosenProvider(args, scopes);
  if (!(scopes.provider ?? []).includes(p)) return `cannot create an event through provider '${p}': not granted`;
  return null;
}

export const calendarEventCreate: Capability<CalendarEventCreateInput, CalendarEventCreateResult> = {
  schema: schemaJson as CapabilitySchema,
  authorize: outsideScope,
  provider: chosenProvider,
  target: (args, scopes) => `calendar '${chosenCalendar(args, scopes)}' via provider '${chosenProvider(args, scopes)}'`,
  async run(args, scopes, context) {
    const ev = checkEvent(args);
    const denied = outsideScope(args, scopes);
    if (denied) throw new VivError(Exit.denied, denied);
    const a = matchAttendees(args.attendees ?? [], scopes["attendee-domain"] ?? [], scopes.attendees ?? []);
    if (!a.ok) throw new VivError(Exit.data, a.reason);
    const p = context?.provider;
    if (!p || !context.secret) throw new VivError(Exit.unavailable, "no provider configured for this call (run it through the broker)");
    if (p.kind !== "caldav") throw new VivError(Exit.config, `provider '${p.name}' is of kind '${p.kind}', which this capability does not speak`);
    const uid = randomUUID();
    const link = await putCalendarEvent(p, context.secret, { calendar: chosenCalendar(args, scopes), uid, ics: eventIcs(uid, ev, a.addresses) });
    return { event_id: uid, html_link: link };
  },
};
