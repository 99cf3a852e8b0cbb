#!/usr/bin/env bats
# calendar-event-create through the real stub, broker and jail, against a real Radicale (Debian's
# package) started on loopback for each test with its own htpasswd user, its storage in the
# test's temp dir. Every created event is read back from Radicale (a calendar-query REPORT and a
# GET through the server), never from our own code. A random canary is the user's password: it
# must reach Radicale and nothing else, not the jail, viv-log, audit.db or any result or error.
#
# Scripts passed to `sh -c` inside the jail are single-quoted on purpose: their variables expand
# in the jail. bats' `run` sets stderr and stderr_lines.
# shellcheck disable=SC2016,SC2154

load ../../test/bats/helpers

CAL_USER=cal-alice

setup() {
  viv_setup
  AGENT="cal-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  CANARY="canary-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export VIVARY_VAULT_KEY="$BATS_TEST_TMPDIR/keys/vault.key"
  start_radicale
  mkcalendar work
  mkcalendar family
  cat >"$POLICY" <<KDL
// The user's calendar home on the local Radicale; the password is in the vault as caldav-main.
provider "home-calendar" {
    kind "caldav"
    url "$CAL_HOME"
    username "$CAL_USER"
    credential "caldav-main"
}
agent "$AGENT" {
    workspace "$HOST/ws"
    grant "calendar-event-create" {
        provider "home-calendar"
        calendar "work"
        calendar "family"
        calendar "absent"
        attendees max=3
        attendee-domain "example.com"
    }
}
KDL
  start_broker
  export AGENT CANARY
}

teardown() {
  stop_broker
  if [ -n "${RADICALE_PID:-}" ]; then
    kill "$RADICALE_PID" 2>/dev/null || true
    wait "$RADICALE_PID" 2>/dev/null || true
  fi
}

# start_radicale: a real Radicale on 127.0.0.1 port 0 (test/radicale.ts), its user CAL_USER with
# the canary as password; sets CAL_HOME, the user's calendar home.
start_radicale() {
  local dir="$BATS_TEST_TMPDIR/radicale"
  mkdir -p "$dir"
  printf '%s' "$CANARY" >"$dir/password"
  printf 'machine 127.0.0.1 login %s password %s\n' "$CAL_USER" "$CANARY" >"$dir/netrc"
  "$VIV_ROOT/node_modules/.bin/bun" "$VIV_ROOT/test/radicale.ts" --user "$CAL_USER" --password-file "$dir/password" >"$dir/url" 2>"$dir/err" &
  RADICALE_PID=$!
  wait_for test -s "$dir/url"
  CAL_HOME=$(head -n 1 "$dir/url")
  NETRC="$dir/netrc"
  export CAL_HOME NETRC RADICALE_PID
}

# dav ARGS...: curl to Radicale as CAL_USER (the password from a netrc file, never argv).
dav() {
  curl -sS --netrc-file "$NETRC" "$@"
}

mkcalendar() {
  [ "$(dav -o /dev/null -w '%{http_code}' -X MKCALENDAR "$CAL_HOME$1/")" = 201 ]
}

# events CALENDAR: the iCalendar data of every event in CALENDAR, by a calendar-query REPORT.
events() {
  dav -X REPORT -H 'Depth: 1' -H 'Content-Type: application/xml; charset=utf-8' --data-binary \
    '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"/></c:comp-filter></c:filter></c:calendar-query>' \
    "$CAL_HOME$1/"
}

event_count() {
  events "$1" | grep -c 'BEGIN:VEVENT' || true
}

set_secret() {
  printf '%s\n' "${1:-$CANARY}" | viv secret set caldav-main
}

# cec ARGS...: calendar-event-create ARGS... called from inside the agent's jail.
cec() {
  viv run --agent "$AGENT" -- calendar-event-create "$@"
}

# refute_canary TEXT: TEXT holds no spelling of the canary (secret_spellings).
refute_canary() {
  refute_secret "$1" "$CANARY" "$CAL_USER"
}

@test "an event created from the jail is on Radicale, in UTC, read back through the server" {
  set_secret
  run -0 --separate-stderr cec --title 'Quarterly planning' --start 2026-12-03T10:00:00+01:00 --end 2026-12-03T11:30:00-00:00 \
    --attendees Bob@Example.com --attendees carol@example.com --calendar work
  [ "$stderr" = "" ]
  local id link
  id=$(jq -r .event_id <<<"$output")
  link=$(jq -r .html_link <<<"$output")
  [[ "$id" =~ ^[0-9a-f-]{36}$ ]]
  [ "$link" = "${CAL_HOME}work/$id.ics" ]
  run -0 events work
  [[ "$output" == *"UID:$id"* ]]
  [[ "$output" == *"SUMMARY:Quarterly planning"* ]]
  [[ "$output" == *"DTSTART:20261203T090000Z"* ]]
  [[ "$output" == *"DTEND:20261203T113000Z"* ]]
  # The domain in canonical form; the local part as given (it is case-sensitive).
  [[ "$output" == *"ATTENDEE;ROLE=REQ-PARTICIPANT:MAILTO:Bob@example.com"* ]]
  [[ "$output" == *"ATTENDEE;ROLE=REQ-PARTICIPANT:MAILTO:carol@example.com"* ]]
  run -0 dav -f "$link"
  [[ "$output" == *"UID:$id"* ]]
  [ "$(event_count family)" -eq 0 ]
  run -0 viv-log --agent "$AGENT" --cap calendar-event-create
  [[ "${lines[0]}" == *" kind=call cap=calendar-event-create "*" provider=home-calendar credential=caldav-main" ]]
  [[ "${lines[1]}" == *" kind=result cap=calendar-event-create "*" exit=0 scrubbed=0" ]]
}

@test "attendees at the bound are accepted; one more, or another domain, is denied with 77 and Radicale gets nothing" {
  set_secret
  run -0 cec --title Three --start 2026-12-03T10:00Z --end 2026-12-03T11:00Z --attendees a@example.com --attendees b@example.com --attendees c@example.com
  [ "$(event_count work)" -eq 1 ]
  run -77 --separate-stderr cec --title Four --start 2026-12-03T10:00Z --end 2026-12-03T11:00Z \
    --attendees a@example.com --attendees b@example.com --attendees c@example.com --attendees d@example.com
  [ "$output" = "" ]
  [ "${stderr_lines[0]}" = "calendar-event-create: cannot invite 4 attendees: the grant allows at most 3" ]
  run -77 --separate-stderr cec --title Other --start 2026-12-03T10:00Z --end 2026-12-03T11:00Z --attendees eve@example.com.evil.example
  [ "${stderr_lines[0]}" = "calendar-event-create: cannot invite 'eve@example.com.evil.example': domain 'example.com.evil.example' is not a granted attendee domain" ]
  run -77 --separate-stderr cec --title Elsewhere --start 2026-12-03T10:00Z --end 2026-12-03T11:00Z --calendar private
  [ "${stderr_lines[0]}" = "calendar-event-create: cannot create an event in calendar 'private': outside granted calendars 'work', 'family', 'absent'" ]
  run -77 --separate-stderr cec --title Elsewhere --start 2026-12-03T10:00Z --end 2026-12-03T11:00Z --provider other-server
  [ "${stderr_lines[0]}" = "calendar-event-create: cannot create an event through provider 'other-server': not granted" ]
  [ "$(event_count work)" -eq 1 ]
  [ "$(viv-log --agent "$AGENT" --json | jq -r 'select(.kind == "deny") | .stage' | sort | uniq -c | tr -s ' ')" = " 4 authorize" ]
}

@test "times in any offset spelling name the same instant; a time without an offset or an end before the start is 65" {
  set_secret
  run -0 cec --title A --start 2026-12-03T15:30:00+05:30 --end 2026-12-03T12:00:00+0100
  run -0 cec --title B --start 2026-12-03T02:00-08 --end 2026-12-03T10:30:00.000Z
  run -0 events work
  [ "$(grep -c 'DTSTART:20261203T100000Z' <<<"$output")" -eq 2 ]
  run -65 --separate-stderr cec --title C --start 2026-12-03T10:00:00 --end 2026-12-03T11:00:00Z
  [ "${stderr_lines[0]}" = "calendar-event-create: start '2026-12-03T10:00:00' has no offset: add Z or +HH:MM" ]
  run -65 --separate-stderr cec --title C --start 2026-12-03T11:00:00+01:00 --end 2026-12-03T09:59:59Z
  [ "${stderr_lines[0]}" = "calendar-event-create: end '2026-12-03T09:59:59Z' is not after start '2026-12-03T11:00:00+01:00'" ]
  run -65 --separate-stderr cec --title $'two\nlines' --start 2026-12-03T10:00Z --end 2026-12-03T11:00Z
  [ "${stderr_lines[0]}" = "calendar-event-create: title has a control character, line break or bidirectional override" ]
  run -65 --separate-stderr cec --title C --start 2026-12-03T10:00Z --end 2026-12-03T11:00Z --attendees 'Bob <bob@example.com>'
  [ "${stderr_lines[0]}" = "calendar-event-create: attendee 'Bob <bob@example.com>': not an e-mail address (local-part@domain)" ]
  run -64 --separate-stderr cec --title "$(printf 'x%.0s' $(seq 1 201))" --start 2026-12-03T10:00Z --end 2026-12-03T11:00Z
  [ "${stderr_lines[0]}" = "calendar-event-create: option '--title' must be at most 200 characters" ]
  [ "$(event_count work)" -eq 2 ]
}

@test "a wrong password is 69 with a clear line that never holds a password" {
  set_secret "wrong-$CANARY"
  run -69 --separate-stderr cec --title X --start 2026-12-03T10:00Z --end 2026-12-03T11:00Z
  [ "$output" = "" ]
  [ "${#stderr_lines[@]}" -eq 1 ]
  [ "${stderr_lines[0]}" = "calendar-event-create: provider 'home-calendar' refused the credential (HTTP 401): check its username and the vault secret" ]
  [ "$(event_count work)" -eq 0 ]
}

@test "a granted calendar missing on the server, a stopped server and a missing secret are each one line with 69" {
  run -69 --separate-stderr cec --title X --start 2026-12-03T10:00Z --end 2026-12-03T11:00Z
  [ "${stderr_lines[0]}" = "calendar-event-create: credential 'caldav-main' unavailable: secret 'caldav-main' is not in the vault" ]
  set_secret
  run -69 --separate-stderr cec --title X --start 2026-12-03T10:00Z --end 2026-12-03T11:00Z --calendar absent
  [ "${stderr_lines[0]}" = "calendar-event-create: provider 'home-calendar' has no calendar 'absent' (HTTP 409)" ]
  kill "$RADICALE_PID"
  wait "$RADICALE_PID" 2>/dev/null || true
  RADICALE_PID=""
  run -69 --separate-stderr cec --title X --start 2026-12-03T10:00Z --end 2026-12-03T11:00Z
  [ "${#stderr_lines[@]}" -eq 1 ]
  [[ "${stderr_lines[0]}" == "calendar-event-create: provider 'home-calendar' failed: cannot reach http://127.0.0.1:"* ]]
}

@test "the canary password reaches Radicale only: not the jail, viv-log, audit.db or any output" {
  set_secret
  # A decoy that looks like the canary, planted where the jail can read it: the search must find it.
  local decoy
  decoy="canary-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  mkdir -p "$HOST/ws"
  printf 'x %s y\n' "$decoy" >"$HOST/ws/decoy"
  chown -R "$(agent_uid "$AGENT")" "$HOST/ws"
  run -0 --separate-stderr viv run --agent "$AGENT" -- sh -c '
    calendar-event-create --title first --start 2026-12-03T10:00Z --end 2026-12-03T11:00Z
    env
    for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr "\0" "\n" <"$f"; done 2>/dev/null
    grep -rsaohE -D skip "canary-[0-9a-f]{32}" / --exclude-dir=proc --exclude-dir=sys --exclude-dir=usr
    exit 0
  '
  [ "$(event_count work)" -eq 1 ]
  [[ "$output" == *"$decoy"* ]]
  refute_canary "$output"
  refute_canary "$stderr"
  run -69 cec --title X --start 2026-12-03T10:00Z --end 2026-12-03T11:00Z --calendar absent
  refute_canary "$output"
  run -0 viv-log --json
  refute_canary "$output"
  run -0 bash -c 'viv-log --json | jq -r .raw | while read -r r; do printf "%s" "$r" | base64 -d; done'
  refute_canary "$output"
  stop_broker
  run -1 grep -aqF "$CANARY" "$STATE/audit.db"
}

@test "every example in calendar-event-create(1) runs in a jail and prints what the page says" {
  # The page's calendar home is https://dav.example.com/alice/; here it is Radicale's.
  set_secret
  check_man_examples --prefix calendar-event-create 4 "s|https://dav.example.com/alice/|$CAL_HOME|g"
  [ "$(event_count work)" -eq 2 ]
}
