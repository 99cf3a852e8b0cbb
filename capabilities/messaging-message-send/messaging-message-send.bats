#!/usr/bin/env bats
# messaging-message-send through the real stub, broker and jail, against a loopback server that
# speaks Twilio's Messages API and checks the basic auth credential (test/fake-twilio.ts). A
# random canary is the auth token: it must reach that server and nothing else, not the jail's
# environment, files or /proc, not viv-log in either format, not the bytes of audit.db and its
# WAL, and not any result, even when the provider echoes it back. A missing secret, an unreadable
# vault and a removed secret deny the calls that need them while other calls go on.
#
# Scripts passed to `sh -c` inside the jail are single-quoted on purpose: their variables expand
# in the jail. bats' `run` sets stderr and stderr_lines.
# shellcheck disable=SC2016,SC2154

load ../../test/bats/helpers

ACCOUNT=AC0123456789abcdef0123456789abcdef

setup() {
  viv_setup
  AGENT="m$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  CANARY="canary-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export VIVARY_VAULT_KEY="$BATS_TEST_TMPDIR/keys/vault.key"
  mkdir -p "$HOST/reports"
  printf '%s' "$CANARY" >"$BATS_TEST_TMPDIR/token"
  RECEIVED="$BATS_TEST_TMPDIR/received.ndjson"
  : >"$RECEIVED"
  "$VIV_ROOT/node_modules/.bin/bun" "$VIV_ROOT/test/fake-twilio.ts" --account "$ACCOUNT" \
    --token-file "$BATS_TEST_TMPDIR/token" --log "$RECEIVED" >"$BATS_TEST_TMPDIR/fake.url" 2>"$BATS_TEST_TMPDIR/fake.err" &
  FAKE_PID=$!
  wait_for test -s "$BATS_TEST_TMPDIR/fake.url"
  FAKE_URL=$(head -n 1 "$BATS_TEST_TMPDIR/fake.url")
  cat >"$POLICY" <<KDL
// The provider the agent sends through; its token is in the vault as twilio-main.
provider "sms" {
    kind "twilio"
    url "$FAKE_URL"
    account "$ACCOUNT"
    from "+1 555 010 0001"
    credential "twilio-main"
}
agent "$AGENT" {
    workspace "$HOST/ws"
    grant "messaging-message-send" {
        provider "sms"
        contact "+1 (555) 010-0000"
    }
    grant "fs-file-write" {
        path "$HOST/reports"
    }
}
KDL
  start_broker
  export AGENT CANARY RECEIVED
}

teardown() {
  stop_broker
  if [ -n "${FAKE_PID:-}" ]; then kill "$FAKE_PID" 2>/dev/null || true; fi
}

set_secret() {
  printf '%s\n' "$CANARY" | viv secret set twilio-main
}

# mms ARGS...: messaging-message-send ARGS... called from inside the agent's jail.
mms() {
  viv run --agent "$AGENT" -- messaging-message-send "$@"
}

# received_count: how many requests the provider received.
received_count() {
  wc -l <"$RECEIVED" | tr -d ' '
}

# refute_canary TEXT: TEXT holds no spelling of the canary (secret_spellings).
refute_canary() {
  refute_secret "$1" "$CANARY" "$ACCOUNT"
}

@test "a message reaches the provider with the injected credential, and the call is recorded without it" {
  set_secret
  run -0 --separate-stderr mms --to '+1 (555) 010-0000' --body 'hello from the jail'
  [[ "$output" =~ ^\{\"message_id\":\"SM[0-9a-f]{32}\",\"status\":\"queued\"\}$ ]]
  [ "$stderr" = "" ]
  [ "$(received_count)" -eq 1 ]
  [ "$(jq -c . "$RECEIVED")" = "{\"method\":\"POST\",\"path\":\"/2010-04-01/Accounts/$ACCOUNT/Messages.json\",\"account\":\"$ACCOUNT\",\"auth_ok\":true,\"to\":\"+15550100000\",\"from\":\"+15550100001\",\"body\":\"hello from the jail\"}" ]
  run -0 viv-log --agent "$AGENT" --cap messaging-message-send
  [[ "${lines[0]}" == *" kind=call cap=messaging-message-send "*" provider=sms credential=twilio-main" ]]
  [[ "${lines[1]}" == *" kind=result cap=messaging-message-send "*" exit=0 scrubbed=0" ]]
}

@test "the canary is absent from the jail's environment, files and /proc" {
  set_secret
  # A decoy that looks like the canary, planted where the jail can read it: the search must find it.
  local decoy
  decoy="canary-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  mkdir -p "$HOST/ws"
  printf 'x %s y\n' "$decoy" >"$HOST/ws/decoy"
  chown -R "$(agent_uid "$AGENT")" "$HOST/ws"
  run -0 --separate-stderr viv run --agent "$AGENT" -- sh -c '
    messaging-message-send --to +15550100000 --body "first" >/dev/null
    env
    for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr "\0" "\n" <"$f"; done 2>/dev/null
    grep -rsaohE -D skip "canary-[0-9a-f]{32}" / --exclude-dir=proc --exclude-dir=sys --exclude-dir=usr
    exit 0
  '
  [ "$(received_count)" -eq 1 ]
  [[ "$output" == *"$decoy"* ]]
  refute_canary "$output"
  refute_canary "$stderr"
}

@test "the canary is absent from viv-log, viv-log --json, the frames it keeps and the bytes of audit.db" {
  set_secret
  run -0 mms --to +15550100000 --body ok
  run -69 mms --to +15550100000 --body echo-secret
  run -0 viv-log
  refute_canary "$output"
  run -0 viv-log --json
  refute_canary "$output"
  run -0 bash -c 'viv-log --json | jq -r .raw | while read -r r; do printf "%s" "$r" | base64 -d; done'
  refute_canary "$output"
  local f
  for f in "$STATE/audit.db" "$STATE/audit.db-wal" "$STATE/vault/secrets.json" "$BATS_TEST_TMPDIR/broker.err"; do
    [ -e "$f" ] || continue
    run -1 grep -aqF -f <(secret_spellings "$CANARY" "$ACCOUNT") "$f"
  done
  # Once the broker stops, the WAL is folded into the database: still nothing.
  stop_broker
  run -1 grep -aqF -f <(secret_spellings "$CANARY" "$ACCOUNT") "$STATE/audit.db"
}

@test "a provider that echoes the secret back is scrubbed, and the record says so" {
  set_secret
  run -69 --separate-stderr mms --to +15550100000 --body echo-secret
  [ "$output" = "" ]
  [ "${#stderr_lines[@]}" -eq 1 ]
  local s='[secret scrubbed]'
  [ "${stderr_lines[0]}" = "messaging-message-send: provider 'sms' refused the message: Twilio error 20003: token $s basic $s hex $s url $s json \"$s\" b64 $s (HTTP 400)" ]
  refute_canary "$stderr"
  [ "$(received_count)" -eq 1 ]
  [ "$(jq -r .auth_ok "$RECEIVED")" = true ]
  run -0 viv-log --agent "$AGENT" --cap messaging-message-send --json
  [ "$(jq -r 'select(.kind == "result") | "\(.exit) \(.scrubbed)"' <<<"$output")" = "69 6" ]
}

@test "a missing secret denies the call that needs it, recorded, while a call that needs none still works" {
  run -69 --separate-stderr mms --to +15550100000 --body hi
  [ "${stderr_lines[0]}" = "messaging-message-send: credential 'twilio-main' unavailable: secret 'twilio-main' is not in the vault" ]
  [ "$(received_count)" -eq 0 ]
  run -0 viv-log --agent "$AGENT" --cap messaging-message-send
  [[ "${lines[0]}" == *" kind=deny cap=messaging-message-send "*"stage=credential exit=69 reason=\"credential 'twilio-main' unavailable: secret 'twilio-main' is not in the vault\""* ]]
  run -0 viv run --agent "$AGENT" -- fs-file-write --path "$HOST/reports/a.txt" --content still-works
  [ "$(cat "$HOST/reports/a.txt")" = still-works ]
}

@test "an unreadable vault denies the calls that need it while other calls go on" {
  set_secret
  mv "$VIVARY_VAULT_KEY" "$VIVARY_VAULT_KEY.away"
  run -69 --separate-stderr mms --to +15550100000 --body hi
  [ "${stderr_lines[0]}" = "messaging-message-send: credential 'twilio-main' unavailable: vault key '$VIVARY_VAULT_KEY' cannot be read: ENOENT" ]
  mv "$VIVARY_VAULT_KEY.away" "$VIVARY_VAULT_KEY"
  printf '{' >"$STATE/vault/secrets.json"
  run -69 --separate-stderr mms --to +15550100000 --body hi
  [ "${stderr_lines[0]}" = "messaging-message-send: credential 'twilio-main' unavailable: vault '$STATE/vault/secrets.json' is not valid JSON" ]
  [ "$(received_count)" -eq 0 ]
  run -0 viv run --agent "$AGENT" -- fs-file-write --path "$HOST/reports/b.txt" --content fine
  [ "$(viv-log --agent "$AGENT" --json | jq -r 'select(.kind == "deny") | .stage' | sort -u)" = credential ]
}

@test "viv secret rm while the broker runs denies the next call" {
  set_secret
  run -0 mms --to +15550100000 --body one
  run -0 viv secret rm twilio-main
  run -69 --separate-stderr mms --to +15550100000 --body two
  [ "${stderr_lines[0]}" = "messaging-message-send: credential 'twilio-main' unavailable: secret 'twilio-main' is not in the vault" ]
  [ "$(received_count)" -eq 1 ]
  [ "$(jq -r .body "$RECEIVED")" = one ]
}

@test "a contact outside the grant is denied with 77 and the provider sees nothing" {
  set_secret
  run -77 --separate-stderr mms --to +15550100009 --body hi
  [ "$output" = "" ]
  [ "${stderr_lines[0]}" = "messaging-message-send: cannot send to '+15550100009': +15550100009 is not a granted contact" ]
  run -77 --separate-stderr mms --to 5550100000 --body hi
  [ "${stderr_lines[0]}" = "messaging-message-send: cannot send to '5550100000': not a phone number in international form (+ and the country code)" ]
  run -77 --separate-stderr mms --to +15550100000 --body hi --provider other
  [ "${stderr_lines[0]}" = "messaging-message-send: cannot send through provider 'other': not granted" ]
  [ "$(received_count)" -eq 0 ]
  [ "$(viv-log --agent "$AGENT" --json | jq -r 'select(.kind == "deny") | .stage' | sort | uniq -c | tr -s ' ')" = " 3 authorize" ]
}

@test "provider failures are one line: 69 for an error, 65 for a reply that makes no sense" {
  set_secret
  run -69 --separate-stderr mms --to +15550100000 --body server-error
  [ "${stderr_lines[0]}" = "messaging-message-send: provider 'sms' failed: HTTP 500" ]
  run -65 --separate-stderr mms --to +15550100000 --body garbage
  [ "${stderr_lines[0]}" = "messaging-message-send: provider 'sms' sent a reply that is not JSON (HTTP 201)" ]
  run -69 --separate-stderr mms --to +15550100000 --body redirect
  [ "${stderr_lines[0]}" = "messaging-message-send: provider 'sms' failed: redirect (HTTP 302) refused; redirects are never followed" ]
  [ "$(received_count)" -eq 3 ]
}

@test "viv secret list names the grant that uses the secret and when it was last used" {
  set_secret
  local t=$'\t' when='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z'
  run -0 viv secret list
  [[ "$output" =~ ^twilio-main${t}created=${when}${t}updated=${when}${t}last_used=never${t}grants=$AGENT/messaging-message-send/sms$ ]]
  run -0 mms --to +15550100000 --body hi
  run -0 viv secret list --json
  [ "$(jq -r '.last_used | test("^[0-9]{4}-")' <<<"$output")" = true ]
  [ "$(jq -c .grants <<<"$output")" = "[\"$AGENT/messaging-message-send/sms\"]" ]
  refute_canary "$output"
}

@test "every example in messaging-message-send(1) runs in a jail and prints what the page says" {
  set_secret
  check_man_examples messaging-message-send 2
  # Only the granted contact's message reached the provider.
  [ "$(jq -sc '[.[] | [.to, .body]]' "$RECEIVED")" = '[["+15550100000","Running late, home by 7"]]' ]
}
