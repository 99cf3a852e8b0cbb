// Provider kind "caldav": a CalDAV server (RFC 4791) reached with HTTP basic auth. One request
// per event: PUT {url}/{calendar}/{uid}.ics of one VCALENDAR with one VEVENT, with
// If-None-Match: * so that it only ever creates a resource and never overwrites one (RFC 4791
// 5.3.2; a 412 says the resource exists). The url is the user's calendar home collection and a
// calendar is the name of a collection below it, so no discovery (PROPFIND) is needed and the
// request goes through providers/http.ts like every other provider's: its deadline, size cap and
// refusal of redirects hold here too, and the password is revealed only into the Authorization
// header. No reply body is ever quoted in an error.
import type { ProviderConfig } from "../lib/capability.ts";
import { Exit, VivError } from "../lib/exit.ts";
import type { Secret } from "../lib/secret.ts";
import { httpRequest } from "./http.ts";
import type { ProviderKind } from "./kind.ts";

const USERNAME = /^[^\s:\u0000-\u001f\u007f]{1,128}$/;

export const caldav: ProviderKind = {
  name: "caldav",
  api: "CalDAV protocol (RFC 4791): a PUT of an iCalendar object (RFC 5545) into a calendar collection below the calendar home, with If-None-Match: *",
  urlExample: "https://dav.example.com/alice/",
  exampleName: "home-calendar",
  credentialDoc: "the user's password, sent with the username as HTTP basic auth",
  settings: {
    username: {
      required: true,
      arg: "USER",
      example: "alice",
      doc: "The user name of the basic auth: up to 128 characters, no spaces, colons or control characters. The url is that user's calendar home (the collection that holds the calendars), and each calendar a grant names is a collection directly below it.",
      check: (v) => (USERNAME.test(v) ? null : "is not a user name (1 to 128 characters, no spaces, colons or control characters)"),
    },
  },
};

/** The URL of an event resource: the calendar home, the calendar's collection, the UID. */
export function eventUrl(p: ProviderConfig, calendar: string, uid: string): string {
  return `${p.url.replace(/\/+$/, "")}/${encodeURIComponent(calendar)}/${encodeURIComponent(uid)}.ics`;
}

const refused = (m: string) => new VivError(Exit.unavailable, m);

/** Why the server refused a PUT, by status: the one line a caller sees. */
function refusal(p: ProviderConfig, calendar: string, status: number): VivError {
  const who = `provider '${p.name}'`;
  switch (status) {
    case 401:
      return refused(`${who} refused the credential (HTTP 401): check its username and the vault secret`);
    case 403:
      return refused(`${who} refused to write to calendar '${calendar}' (HTTP 403): the user may not write there`);
    case 404:
    case 409:
      return refused(`${who} has no calendar '${calendar}' (HTTP ${status})`);
    case 412:
      return refused(`${who} refused the event: a resource with its id exists already (HTTP 412); nothing was overwritten`);
    case 507:
      return refused(`${who} has no room for the event (HTTP 507)`);
    default:
      return status >= 400 && status < 500 ? refused(`${who} refused the event (HTTP ${status})`) : refused(`${who} failed: HTTP ${status}`);
  }
}

/**
 * Creates one event: PUTs the iCalendar text as a new resource named after its UID. Returns
 * the resource's URL. With If-None-Match: * a success (201, or another 2xx) can only mean created.
 */
export async function putCalendarEvent(p: ProviderConfig, secret: Secret, ev: { calendar: string; uid: string; ics: string }): Promise<string> {
  const username = p.settings.username!;
  if (!USERNAME.test(username)) throw new VivError(Exit.config, `provider '${p.name}': username is not valid`);
  const url = eventUrl(p, ev.calendar, ev.uid);
  const reply = await httpRequest(p.name, url, {
    method: "PUT",
    headers: {
      authorization: `Basic ${Buffer.from(`${username}:${secret.reveal()}`).toString("base64")}`,
      "content-type": "text/calendar; charset=utf-8",
      "if-none-match": "*",
    },
    body: ev.ics,
  });
  if (reply.status >= 200 && reply.status < 300) return url;
  throw refusal(p, ev.calendar, reply.status);
}
