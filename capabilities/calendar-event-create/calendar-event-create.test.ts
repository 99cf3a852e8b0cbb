// calendar-event-create and its provider kind "caldav" against a real Radicale started on
// loopback (test/radicale.ts): what the event becomes on the server, read back with an
// independent CalDAV client (tsdav, a calendar-query REPORT) and parsed with ical.js; the time
// spellings and the checks of title, times and attendees; the scope (calendars, the attendee
// bound, attendee domains) and its policy nodes; and each way the server can fail or refuse,
// mapped to one error line that never holds the password. The man page's examples load as a policy.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ICAL from "ical.js";
import { fetchCalendarObjects } from "tsdav";
import { CATALOG } from "../../capabilities/registry.ts";
import { Exit, VivError } from "../../lib/exit.ts";
import { Secret } from "../../lib/secret.ts";
import { loadPolicyText } from "../../policy/load.ts";
import { matchAttendees, parseEmail, refuseAttendeeDomain, refuseCalendarName } from "../../policy/scope.ts";
import { putCalendarEvent } from "../../providers/caldav.ts";
import { basicAuth, startRadicale, type Radicale } from "../../test/radicale.ts";
import { parseInstant } from "./event.ts";
import { calendarEventCreate as cap } from "./index.ts";
import type { CalendarEventCreateInput } from "./types.ts";
import { problemsOf } from "../../test/policy-problems.ts";

const USER = "cal-alice";
const PASSWORD = `canary-pw-${crypto.randomUUID()}`;
let radicale: Radicale;
beforeAll(async () => {
  radicale = await startRadicale({ user: USER, password: PASSWORD, calendars: ["work", "family"] });
});
afterAll(() => radicale?.stop());

const scopes = { calendar: ["work", "family", "granted-but-absent"], attendees: ["5"], "attendee-domain": ["example.com", "bücher.example"], provider: ["home-calendar"] };
const provider = (url?: string) => ({ name: "home-calendar", kind: "caldav", url: url ?? radicale.home, settings: { username: USER } });
const create = (args: Partial<CalendarEventCreateInput>, opts: { password?: string; url?: string; scopes?: Record<string, string[]> } = {}) =>
  Promise.resolve().then(() => cap.run({ title: "Planning", start: "2026-12-03T10:00:00+01:00", end: "2026-12-03T11:00:00+01:00", ...args }, opts.scopes ?? scopes, { provider: provider(opts.url), secret: new Secret(opts.password ?? PASSWORD, "caldav-main") }));

async function failure(p: Promise<unknown>): Promise<[number, string]> {
  try {
    await p;
  } catch (e) {
    if (e instanceof VivError) return [e.code, e.message];
    throw e;
  }
  throw new Error("no error");
}

/** The events of a calendar as the server returns them to a calendar-query REPORT. */
async function serverEvents(calendar: string): Promise<Map<string, ICAL.Component>> {
  const objects = await fetchCalendarObjects({ calendar: { url: `${radicale.home}${calendar}/` }, headers: { authorization: basicAuth(USER, PASSWORD) } });
  return new Map(objects.map((o) => {
    const vevent = new ICAL.Component(ICAL.parse(o.data as string)).getFirstSubcomponent("vevent")!;
    return [String(vevent.getFirstPropertyValue("uid")), vevent];
  }));
}
const utc = (v: unknown) => (v as ICAL.Time).toJSDate().toISOString();

describe("times: ISO 8601 with an offset, to the instant", () => {
  const ok: [string, string][] = [
    ["2026-12-03T10:00:00+01:00", "2026-12-03T09:00:00.000Z"],
    ["2026-12-03T10:00:00Z", "2026-12-03T10:00:00.000Z"],
    ["2026-12-03t10:00:00z", "2026-12-03T10:00:00.000Z"],
    ["2026-12-03T10:00Z", "2026-12-03T10:00:00.000Z"],
    ["2026-12-03T10:00:00.250-08:00", "2026-12-03T18:00:00.250Z"],
    ["2026-12-03T10:00:00+0530", "2026-12-03T04:30:00.000Z"],
    ["2026-12-03T10:00:00+05", "2026-12-03T05:00:00.000Z"],
    ["2026-12-03T00:30:00+14:00", "2026-12-02T10:30:00.000Z"],
    ["2026-12-03T10:00:00-00:00", "2026-12-03T10:00:00.000Z"],
    ["2028-02-29T12:00:00Z", "2028-02-29T12:00:00.000Z"],
  ];
  for (const [spelling, instant] of ok) test(spelling, () => expect(new Date(parseInstant("start", spelling)).toISOString()).toBe(instant));

  const bad: [string, string][] = [
    ["2026-12-03T10:00:00", "start '2026-12-03T10:00:00' has no offset: add Z or +HH:MM"],
    ["2026-12-03", "start '2026-12-03' is not an ISO 8601 date-time (YYYY-MM-DDTHH:MM[:SS] and an offset)"],
    ["2026-12-03 10:00:00Z", "start '2026-12-03 10:00:00Z' is not an ISO 8601 date-time (YYYY-MM-DDTHH:MM[:SS] and an offset)"],
    ["tomorrow at ten", "start 'tomorrow at ten' is not an ISO 8601 date-time (YYYY-MM-DDTHH:MM[:SS] and an offset)"],
    ["2026-12-03T10:00:00 CET", "start '2026-12-03T10:00:00 CET' has an offset that is not Z, +HH:MM, +HHMM or +HH"],
    ["2026-12-03T10:00:00+1", "start '2026-12-03T10:00:00+1' has an offset that is not Z, +HH:MM, +HHMM or +HH"],
    ["2026-12-03T10:00:00+15:00", "start '2026-12-03T10:00:00+15:00' has an offset outside -12:00 to +14:00"],
    ["2026-12-03T10:00:00-13:00", "start '2026-12-03T10:00:00-13:00' has an offset outside -12:00 to +14:00"],
    ["2026-12-03T10:00:00+01:60", "start '2026-12-03T10:00:00+01:60' has an offset outside -12:00 to +14:00"],
    ["2026-02-30T10:00:00Z", "start '2026-02-30T10:00:00Z' is not a valid date and time (year 1970 to 9999)"],
    ["2026-12-03T24:00:00Z", "start '2026-12-03T24:00:00Z' is not a valid date and time (year 1970 to 9999)"],
    ["2026-12-31T23:59:60Z", "start '2026-12-31T23:59:60Z' is not a valid date and time (year 1970 to 9999)"],
    ["2026-13-01T10:00:00Z", "start '2026-13-01T10:00:00Z' is not a valid date and time (year 1970 to 9999)"],
    ["1969-12-31T23:00:00Z", "start '1969-12-31T23:00:00Z' is not a valid date and time (year 1970 to 9999)"],
  ];
  for (const [spelling, why] of bad) {
    test(`refused: ${spelling}`, () => {
      let e: unknown;
      try {
        parseInstant("start", spelling);
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(VivError);
      expect([(e as VivError).code, (e as VivError).message]).toEqual([Exit.data, why]);
    });
  }
});

describe("scope values", () => {
  test("calendar names are one plain path segment", () => {
    for (const v of ["work", "Family_2", "a.b-c", "0c8f9a4e-2b4d-4e0b-9a51-3f1f6e2d1c11"]) expect(refuseCalendarName(v)).toBeNull();
    for (const v of ["", ".", "..", "../bob", "a/b", "a%2Fb", ".hidden", "a b", "x".repeat(65), "wörk"]) expect(refuseCalendarName(v)).not.toBeNull();
  });
  test("attendee domains are names of two labels or more, canonical, without wildcards", () => {
    for (const v of ["example.com", "EXAMPLE.com", "bücher.example", "a-b.example.co.uk"]) expect(refuseAttendeeDomain(v)).toBeNull();
    for (const v of ["com", "*.example.com", "*", "example..com", "-x.example", "127.0.0.1", "[::1]", "ex ample.com", "a@example.com", "example.com/x", "example.com:25"]) expect(refuseAttendeeDomain(v)).not.toBeNull();
  });
  test("e-mail addresses: dot-atom local part, canonical domain", () => {
    expect(parseEmail("bob@Example.COM")).toEqual({ ok: true, address: "bob@example.com", domain: "example.com" });
    expect(parseEmail("anna@bücher.example")).toEqual({ ok: true, address: "anna@xn--bcher-kva.example", domain: "xn--bcher-kva.example" });
    expect(parseEmail("o'neil+cal@example.com").ok).toBe(true);
    for (const v of ["bob", "@example.com", "bob@", "bob@localhost", "bob@@example.com", "bob@example.com\r\nBCC:x@y.z", "Bob <bob@example.com>", "\"bob\"@example.com", "bob..x@example.com", ".bob@example.com", "bob@example.com.", "bob@127.0.0.1", "bob@[127.0.0.1]", "bob@exa mple.com", `${"b".repeat(65)}@example.com`]) {
      expect(parseEmail(v).ok).toBe(false);
    }
  });
});

describe("authorize", () => {
  const at = (n: number, domain = "example.com") => Array.from({ length: n }, (_, i) => `p${i}@${domain}`);
  const cases: [string, Partial<CalendarEventCreateInput>, string | null][] = [
    ["the first granted calendar by default", {}, null],
    ["another granted calendar", { calendar: "family" }, null],
    ["attendees at the bound", { attendees: at(5) }, null],
    ["attendees of a granted domain in any case and in Unicode", { attendees: ["Bob@EXAMPLE.com", "anna@BÜCHER.example", "lea@xn--bcher-kva.example"] }, null],
    ["a calendar not granted", { calendar: "private" }, "cannot create an event in calendar 'private': outside granted calendars 'work', 'family', 'granted-but-absent'"],
    ["a calendar with a path in it", { calendar: "../bob/work" }, "cannot create an event in calendar '../bob/work': calendar name is not a calendar collection name (letters, digits, '.', '_' and '-', up to 64, starting with a letter or digit)"],
    ["one attendee over the bound", { attendees: at(6) }, "cannot invite 6 attendees: the grant allows at most 5"],
    ["an attendee of another domain", { attendees: ["bob@example.com", "eve@evil.example"] }, "cannot invite 'eve@evil.example': domain 'evil.example' is not a granted attendee domain"],
    ["an attendee of a subdomain", { attendees: ["bob@mail.example.com"] }, "cannot invite 'bob@mail.example.com': domain 'mail.example.com' is not a granted attendee domain"],
    ["an attendee of a look-alike domain", { attendees: ["bob@example.com.evil.example"] }, "cannot invite 'bob@example.com.evil.example': domain 'example.com.evil.example' is not a granted attendee domain"],
    ["a malformed attendee is left to run (bad data, not a denial)", { attendees: ["not-an-address"] }, null],
    ["a granted provider by name", { provider: "home-calendar" }, null],
    ["a provider not granted", { provider: "other-server" }, "cannot create an event through provider 'other-server': not granted"],
  ];
  for (const [name, args, why] of cases) {
    test(name, () => expect(cap.authorize({ title: "x", start: "2026-12-03T10:00:00Z", end: "2026-12-03T11:00:00Z", ...args }, scopes)).toBe(why));
  }
  test("a grant with attendees max=0 invites nobody", () => {
    expect(cap.authorize({ title: "x", start: "s", end: "e", attendees: ["bob@example.com"] }, { ...scopes, attendees: ["0"] })).toBe("cannot invite 1 attendee: the grant allows at most 0");
    expect(cap.authorize({ title: "x", start: "s", end: "e" }, { ...scopes, attendees: ["0"] })).toBeNull();
  });
  test("matchAttendees refuses the same address twice, whatever its case", () => {
    expect(matchAttendees(["bob@example.com", "BOB@Example.com"], ["example.com"], ["5"])).toEqual({ ok: false, data: true, reason: "attendee 'BOB@Example.com' is given twice" });
  });
});

describe("an event created on Radicale", () => {
  test("is stored as asked, in UTC, and read back through the server", async () => {
    const r = await create({ title: "Quarterly planning; budget, Q1 \\ Q2 — é", start: "2026-12-03T10:00:00+01:00", end: "2026-12-03T11:30:00+0100", attendees: ["Bob@Example.com", "anna@bücher.example"] });
    expect(r.event_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.html_link).toBe(`${radicale.home}work/${r.event_id}.ics`);
    const ev = (await serverEvents("work")).get(r.event_id)!;
    expect(ev).toBeDefined();
    expect(ev.getFirstPropertyValue("summary")).toBe("Quarterly planning; budget, Q1 \\ Q2 — é");
    expect(utc(ev.getFirstPropertyValue("dtstart"))).toBe("2026-12-03T09:00:00.000Z");
    expect(utc(ev.getFirstPropertyValue("dtend"))).toBe("2026-12-03T10:30:00.000Z");
    expect(ev.getAllProperties("attendee").map((a) => String(a.getFirstValue()).toLowerCase())).toEqual(["mailto:bob@example.com", "mailto:anna@xn--bcher-kva.example"]);
    // A GET of the link with the credential returns the same resource.
    const got = await fetch(r.html_link, { headers: { authorization: basicAuth(USER, PASSWORD) } });
    expect(got.status).toBe(200);
    expect(await got.text()).toContain(`UID:${r.event_id}`);
  });

  test("a title at the length bound, in several scripts, survives line folding exactly", async () => {
    const title = [..."Réunion 会議 встреча 🗓️ ; , \\ ".repeat(8)].slice(0, 180).join("") + "x".repeat(20);
    expect([...title].length).toBe(200);
    const r = await create({ title });
    expect((await serverEvents("work")).get(r.event_id)!.getFirstPropertyValue("summary")).toBe(title);
  });

  test("goes to the calendar the call names, and only there", async () => {
    const r = await create({ calendar: "family", title: "Dinner" });
    expect((await serverEvents("family")).has(r.event_id)).toBe(true);
    expect((await serverEvents("work")).has(r.event_id)).toBe(false);
  });

  test("attendees at the bound are all stored; one more is denied and nothing is stored", async () => {
    const five = ["a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"];
    const r = await create({ title: "Five", attendees: five });
    expect((await serverEvents("work")).get(r.event_id)!.getAllProperties("attendee").length).toBe(5);
    const before = (await serverEvents("work")).size;
    expect(await failure(create({ title: "Six", attendees: [...five, "f@example.com"] }))).toEqual([Exit.denied, "cannot invite 6 attendees: the grant allows at most 5"]);
    expect((await serverEvents("work")).size).toBe(before);
  });

  test("bad input is refused with 65 before any request", async () => {
    const before = (await serverEvents("work")).size;
    const cases: [Partial<CalendarEventCreateInput>, string][] = [
      [{ title: "a\nb" }, "title has a control character, line break or bidirectional override"],
      [{ title: "x\u202eevil" }, "title has a control character, line break or bidirectional override"],
      [{ title: "   " }, "title is blank"],
      [{ start: "2026-12-03T11:00:00Z", end: "2026-12-03T11:00:00Z" }, "end '2026-12-03T11:00:00Z' is not after start '2026-12-03T11:00:00Z'"],
      [{ start: "2026-12-03T11:00:00+01:00", end: "2026-12-03T09:30:00Z" }, "end '2026-12-03T09:30:00Z' is not after start '2026-12-03T11:00:00+01:00'"],
      [{ start: "2026-12-01T00:00:00Z", end: "2027-01-01T00:00:01Z" }, "end '2027-01-01T00:00:01Z' is more than 31 days after start '2026-12-01T00:00:00Z'"],
      [{ attendees: ["bob@example.com", "bob"] }, "attendee 'bob': not an e-mail address (local-part@domain)"],
      [{ attendees: ["Bob <bob@example.com>"] }, "attendee 'Bob <bob@example.com>': not an e-mail address (local-part@domain)"],
    ];
    for (const [args, why] of cases) expect([JSON.stringify(args), ...(await failure(create(args)).catch(() => [0, "no error"]))]).toEqual([JSON.stringify(args), Exit.data, why]);
    expect((await serverEvents("work")).size).toBe(before);
  });
});

describe("provider errors are one line, and never hold the password", () => {
  test("a wrong password is 69 with a clear message", async () => {
    const [c, m] = await failure(create({}, { password: "wrong-password-123" }));
    expect([c, m]).toEqual([Exit.unavailable, "provider 'home-calendar' refused the credential (HTTP 401): check its username and the vault secret"]);
  });
  test("a calendar granted but absent on the server", async () => {
    expect(await failure(create({ calendar: "granted-but-absent" }))).toEqual([Exit.unavailable, "provider 'home-calendar' has no calendar 'granted-but-absent' (HTTP 409)"]);
  });
  test("another user's calendar home is forbidden", async () => {
    expect(await failure(create({}, { url: `${radicale.origin}/someone-else/` }))).toEqual([Exit.unavailable, "provider 'home-calendar' refused to write to calendar 'work' (HTTP 403): the user may not write there"]);
  });
  test("a resource that exists already is never overwritten (If-None-Match: *, 412)", async () => {
    const r = await create({ title: "Original" });
    const [c, m] = await failure(putCalendarEvent(provider(), new Secret(PASSWORD, "caldav-main"), { calendar: "work", uid: r.event_id, ics: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n" }));
    expect([c, m]).toEqual([Exit.unavailable, "provider 'home-calendar' refused the event: a resource with its id exists already (HTTP 412); nothing was overwritten"]);
    expect((await serverEvents("work")).get(r.event_id)!.getFirstPropertyValue("summary")).toBe("Original");
  });
  test("a server that is down", async () => {
    const [c, m] = await failure(create({}, { url: "http://127.0.0.1:1/cal-alice/" }));
    expect(c).toBe(Exit.unavailable);
    expect(m).toMatch(/^provider 'home-calendar' failed: cannot reach http:\/\/127\.0\.0\.1:1: [^\n]*$/);
  });
  test("a redirect, a server error, a reply over the size cap, a refusal: each one line, the password in none", async () => {
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const path = new URL(req.url).pathname;
        if (path.startsWith("/redirect/")) return new Response(null, { status: 307, headers: { location: "http://127.0.0.2/steal" } });
        if (path.startsWith("/big/")) return new Response("x".repeat(300 * 1024), { status: 201 });
        if (path.startsWith("/error/")) return new Response(`internal error, your auth was ${req.headers.get("authorization")}`, { status: 500 });
        return new Response(`bad request: ${req.headers.get("authorization")}`, { status: 400 });
      },
    });
    try {
      const url = (p: string) => `http://127.0.0.1:${server.port}/${p}/`;
      const cases: [string, string][] = [
        ["redirect", "provider 'home-calendar' failed: redirect (HTTP 307) refused; redirects are never followed"],
        ["error", "provider 'home-calendar' failed: HTTP 500"],
        ["big", "provider 'home-calendar' failed: reply larger than 262144 bytes"],
        ["refuse", "provider 'home-calendar' refused the event (HTTP 400)"],
      ];
      for (const [p, why] of cases) {
        const [c, m] = await failure(create({}, { url: url(p) }));
        expect([c, m]).toEqual([Exit.unavailable, why]);
        expect(m).not.toContain(PASSWORD);
      }
    } finally {
      server.stop(true);
    }
  });
  test("a run without a provider in its context (not through the broker) is unavailable", async () => {
    expect(await failure(Promise.resolve().then(() => cap.run({ title: "x", start: "2026-12-03T10:00:00Z", end: "2026-12-03T11:00:00Z" }, scopes)))).toEqual([Exit.unavailable, "no provider configured for this call (run it through the broker)"]);
  });
});

describe("policy", () => {
  const load = (grant: string, prov = `provider "home-calendar" {\n kind "caldav"\n url "https://dav.example.com/alice/"\n username "alice"\n credential "caldav-main"\n}`) =>
    loadPolicyText([{ file: "p.kdl", text: `${prov}\nagent "cal-a" {\n grant "calendar-event-create" {\n${grant}\n }\n}\n` }], CATALOG);
  const problems = (grant: string, prov?: string) => problemsOf(() => load(grant, prov));
  const full = `provider "home-calendar"\ncalendar "work"\nattendees max=5\nattendee-domain "example.com"`;
  test("a full grant loads with its scope", () => {
    expect(load(full).agents.get("cal-a")!.grants.get("calendar-event-create")!.scopes).toEqual({ provider: ["home-calendar"], calendar: ["work"], attendees: ["5"], "attendee-domain": ["example.com"] });
  });
  test("each scope kind is required, and wrong values are refused with file:line", () => {
    expect(problems(`provider "home-calendar"\ncalendar "work"\nattendee-domain "example.com"`)).toEqual(["p.kdl:8: grant 'calendar-event-create' needs at least one 'attendees'"]);
    expect(problems(`provider "home-calendar"\ncalendar "work"\nattendees max=5`)).toEqual(["p.kdl:8: grant 'calendar-event-create' needs at least one 'attendee-domain'"]);
    expect(problems(full.replace("max=5", "max=51"))).toEqual([`p.kdl:11: attendees max=51 refused: max must be a whole number from 0 to 50`]);
    expect(problems(full.replace("max=5", `max="5"`))).toEqual([`p.kdl:11: attendees max=5 refused: max must be a whole number from 0 to 50`]);
    expect(problems(full.replace("max=5", "5"))).toEqual(["p.kdl:11: 'attendees' takes max= only"]);
    expect(problems(full.replace("max=5", "limit=5"))).toEqual(["p.kdl:11: unknown property 'limit' on 'attendees' (expected 'max')"]);
    expect(problems(`${full}\nattendees max=3`)).toEqual(["p.kdl:13: 'attendees' is given twice"]);
    expect(problems(full.replace(`"work"`, `"../work"`))).toEqual(["p.kdl:10: calendar '../work' refused: is not a calendar collection name (letters, digits, '.', '_' and '-', up to 64, starting with a letter or digit)"]);
    expect(problems(full.replace(`"example.com"`, `"*.example.com"`))).toEqual(["p.kdl:12: attendee-domain '*.example.com' refused: has a wildcard; name each domain exactly"]);
  });
  test("the provider needs its username, and plain http only to loopback", () => {
    expect(problems(full, `provider "home-calendar" {\n kind "caldav"\n url "https://dav.example.com/alice/"\n credential "caldav-main"\n}`)).toEqual(["p.kdl:1: provider 'home-calendar' needs 'username'"]);
    expect(problems(full, `provider "home-calendar" {\n kind "caldav"\n url "http://dav.example.com/alice/"\n username "alice"\n credential "caldav-main"\n}`)).toEqual(["p.kdl:3: url 'http://dav.example.com/alice/' refused: plain http is allowed to loopback addresses only; use https"]);
    expect(problems(full, `provider "home-calendar" {\n kind "caldav"\n url "https://dav.example.com/alice/"\n username "al ice"\n credential "caldav-main"\n}`)).toEqual(["p.kdl:4: username 'al ice' refused: is not a user name (1 to 128 characters, no spaces, colons or control characters)"]);
  });
  test("the examples of man/calendar-event-create.1 form a valid policy", () => {
    const page = readFileSync(join(import.meta.dir, "..", "..", "man", "calendar-event-create.1"), "utf8");
    const examples = [...page.matchAll(/^\.EX\n([\s\S]*?)^\.EE$/gm)].map((m) => m[1]!.replace(/\\-/g, "-"));
    const grant = examples.find((e) => e.startsWith("grant "))!;
    const prov = examples.find((e) => e.startsWith("provider "))!;
    const p = loadPolicyText([{ file: "man.kdl", text: `${prov}\nagent "cal-man" {\n${grant}\n}\n` }], CATALOG);
    expect(p.providers.get("home-calendar")!.kind).toBe("caldav");
    expect(p.agents.get("cal-man")!.grants.get("calendar-event-create")!.scopes).toEqual({ calendar: ["work"], attendees: ["5"], "attendee-domain": ["example.com"], provider: ["home-calendar"] });
  });
});
