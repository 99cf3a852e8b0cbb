#!/usr/bin/env bats
# Registered (third-party) capabilities through the real stub, broker and jail: an executable that
# keeps the capability interface, registered with a policy `capability` node that pins the sha256
# of the schema it prints, is governed like a built-in. The shipped example (a shell script) is
# called from a jail; argv outside its schema is refused before it runs; a changed schema stops it
# until pinned again; a probe (written here, with its run log baked in) shows it runs as its own
# unprivileged uid, in a cleared environment, cwd /, without the state directory; the timeout and
# output cap end it (69, one line); its credential reaches it in its environment only and never a
# record, a result or the jail.
# shellcheck disable=SC2016,SC2154

load helpers

EXAMPLE_SRC="$VIV_ROOT/policy/examples/capabilities/text-word-count"

setup() {
  viv_setup
  export VIVARY_VAULT_KEY="$BATS_TEST_TMPDIR/keys/vault.key"
  AGENT="ext-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
  LIB="$BATS_TEST_TMPDIR/lib"
  RAN="$BATS_TEST_TMPDIR/ran"
  mkdir -p "$LIB" "$RAN"
  chmod 755 "$LIB"
  chmod 1777 "$RAN"
  cp "$EXAMPLE_SRC" "$LIB/text-word-count"
  chmod 755 "$LIB/text-word-count"
  CANARY="canary-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  write_probe
  export AGENT LIB RAN CANARY
}

teardown() {
  stop_broker
}

# write_probe: LIB/ext-probe, a capability that logs each run to RAN/log and reports on itself.
write_probe() {
  cat >"$LIB/ext-probe" <<SH
#!/bin/sh
if [ "\${1:-}" = --help ]; then
  cat <<'JSON'
{
  "\$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "ext-probe",
  "description": "Report on the process a registered capability runs in.",
  "type": "object",
  "additionalProperties": false,
  "required": ["mode"],
  "properties": {
    "mode": { "type": "string", "enum": ["id", "env", "scope", "state", "sleep", "flood", "secret", "fail"] }
  },
  "x-vivary-risk": "low",
  "x-vivary-scopes": [],
  "x-vivary-credential": "probe-token",
  "x-vivary-output": { "type": "object" }
}
JSON
  exit 0
fi
echo "\$*" >>"$RAN/log"
case \$1 in
  --mode=id) printf '{"uid":%s,"gid":%s,"groups":"%s","cwd":"%s"}\n' "\$(id -u)" "\$(id -g)" "\$(id -G)" "\$(pwd)" ;;
  --mode=env) printf '{"env":"%s"}\n' "\$(env | cut -d= -f1 | grep -v '^PWD\$' | LC_ALL=C sort | tr '\n' ' ')" ;;
  --mode=scope) printf '%s\n' "\$VIVARY_SCOPE" ;;
  --mode=state)
    l=no; r=no
    ls "$STATE" >/dev/null 2>&1 && l=yes
    head -c1 "$STATE/audit.db" >/dev/null 2>&1 && r=yes
    printf '{"listed":"%s","read":"%s"}\n' "\$l" "\$r" ;;
  --mode=sleep) sleep 300 & sleep 300 ;;
  --mode=flood) yes ;;
  --mode=secret) printf '{"length":%d,"echo":"%s"}\n' "\${#VIVARY_CREDENTIAL}" "\$VIVARY_CREDENTIAL"; echo "ext-probe: note \$VIVARY_CREDENTIAL" >&2 ;;
  --mode=fail) echo "ext-probe: no forecast for that place" >&2; exit 69 ;;
esac
SH
  chmod 755 "$LIB/ext-probe"
}

# pin NAME: the capability node that registers LIB/NAME, as viv caps pin prints it.
pin() {
  viv caps pin "$LIB/$1"
}

# write_policy [PROBE_TIMEOUT]: the agent granted both registered capabilities.
write_policy() {
  { pin text-word-count; pin ext-probe | sed "s|^}|    timeout \"${1:-10s}\"\n}|"; } >"$POLICY"
  cat >>"$POLICY" <<KDL
agent "$AGENT" {
    grant "text-word-count"
    grant "ext-probe" {
        credential "ext-probe-key"
    }
}
KDL
  printf '%s\n' "$CANARY" | viv secret set ext-probe-key >/dev/null
}

probe_uid() {
  "$VIV_ROOT/node_modules/.bin/bun" -e "
    import { agentUid } from '$VIV_ROOT/policy/load.ts';
    import { capabilityUid } from '$VIV_ROOT/policy/external.ts';
    console.log(capabilityUid('$1', agentUid));"
}

@test "the example is registered with viv caps pin, listed by viv caps, and called from a jail" {
  run -0 pin text-word-count
  [[ "${lines[0]}" == 'capability "text-word-count" {' ]]
  [[ "${lines[2]}" =~ ^\ \ \ \ schema-sha256\ \"[0-9a-f]{64}\"$ ]]
  [ "${lines[2]}" = "    schema-sha256 \"$(sha256sum < <("$LIB/text-word-count" --help) | cut -d' ' -f1)\"" ]
  write_policy
  run -0 viv policy check "$POLICY"
  run -0 viv caps --policy "$POLICY"
  [[ "$output" == *$'\n'"text-word-count"$'\t'"risk=low"$'\t'"scopes="$'\t'"Count the words and lines of a text."* ]]
  [[ "$output" == *"fs-file-write"$'\t'* ]]
  start_broker
  run -0 --separate-stderr viv run --agent "$AGENT" -- text-word-count --text "the quick brown fox"
  [ "$output" = '{"words":4,"lines":1}' ]
  [ "$stderr" = "" ]
  run -0 viv run --agent "$AGENT" -- sh -c 'command -v text-word-count && jq -r ".capabilities[].name" /run/vivary/capabilities.json'
  [ "${lines[0]}" = /run/vivary/bin/text-word-count ]
  [ "${lines[1]}" = ext-probe ]
  [ "${lines[2]}" = text-word-count ]
  run -0 viv run --agent "$AGENT" -- text-word-count --help
  [ "$(jq -r '.["x-vivary-risk"]' <<<"$output")" = low ]
  run -0 viv-log --agent "$AGENT" --json
  [ "$(jq -r 'select(.cap == "text-word-count") | .kind' <<<"$output" | tr '\n' ' ')" = "call result help " ]
  [ "$(jq -c 'select(.cap == "text-word-count" and .kind == "call") | .args' <<<"$output")" = '{"text":"the quick brown fox"}' ]
}

@test "argv outside the pinned schema is refused with 64 and the executable never runs" {
  write_policy
  start_broker
  run -0 viv run --agent "$AGENT" -- ext-probe --mode id
  [ "$(wc -l <"$RAN/log")" -eq 1 ]
  run -64 --separate-stderr viv run --agent "$AGENT" -- ext-probe --mode id --shell 'touch /tmp/x'
  [ "$stderr" = "ext-probe: unknown option '--shell'" ]
  run -64 --separate-stderr viv run --agent "$AGENT" -- ext-probe --mode rm
  [ "$stderr" = "ext-probe: option '--mode' must be one of 'id', 'env', 'scope', 'state', 'sleep', 'flood', 'secret', 'fail'" ]
  run -64 --separate-stderr viv run --agent "$AGENT" -- ext-probe
  [ "$stderr" = "ext-probe: missing required option '--mode'" ]
  run -64 viv run --agent "$AGENT" -- text-word-count --text a --text b
  # negative control: the log counts runs, and none of the refused calls added one
  [ "$(wc -l <"$RAN/log")" -eq 1 ]
  run -0 viv-log --agent "$AGENT" --json
  [ "$(jq -r 'select(.kind == "invalid") | .stage' <<<"$output" | sort -u)" = parse ]
}

@test "a changed schema is refused with 78 until it is pinned again" {
  write_policy
  start_broker
  run -0 viv run --agent "$AGENT" -- text-word-count --text "a b"
  sed -i 's/Count the words and lines of a text./Count words, and run anything./' "$LIB/text-word-count"
  run -78 --separate-stderr viv run --agent "$AGENT" -- text-word-count --text "a b"
  [ "$stderr" = "text-word-count: '$LIB/text-word-count' changed since its schema was pinned and checked; reload the policy to check it again" ]
  [ "$output" = "" ]
  # a reload checks it again, refuses the policy and keeps refusing the call
  kill -HUP "$BROKER_PID"
  wait_for sh -c "viv-log | grep -q 'event=policy-reload-refused'"
  run -0 viv-log --json
  [[ "$(jq -r 'select(.event == "policy-reload-refused") | .reason' <<<"$output")" == "$POLICY:1: capability 'text-word-count': the schema '$LIB/text-word-count --help' prints has sha256 "*", not the pinned "*"; review it, then pin it again" ]]
  run -78 viv run --agent "$AGENT" -- text-word-count --text "a b"
  stop_broker
  # a broker does not start on it: 78 and one line
  run -78 --separate-stderr viv-broker --policy "$POLICY" --state "$STATE"
  [ "${#stderr_lines[@]}" -eq 1 ]
  [[ "$stderr" == *"capability 'text-word-count': the schema '$LIB/text-word-count --help' prints has sha256 "*"review it, then pin it again" ]]
  run -78 viv policy check "$POLICY"
  # pinned again, it is served again
  write_policy
  run -0 viv policy check "$POLICY"
  start_broker
  run -0 viv run --agent "$AGENT" -- text-word-count --text "a b"
  [ "$output" = '{"words":2,"lines":1}' ]
}

@test "it runs as its own unprivileged uid, cwd /, with a cleared environment and no state directory" {
  write_policy
  start_broker
  local uid
  uid=$(probe_uid ext-probe)
  [ "$uid" -ge 200000 ]
  run ! getent passwd "$uid"
  run -0 viv run --agent "$AGENT" -- ext-probe --mode id
  [ "$output" = "{\"uid\":$uid,\"gid\":$uid,\"groups\":\"$uid\",\"cwd\":\"/\"}" ]
  [ "$uid" != "$(agent_uid "$AGENT")" ]
  run -0 env SECRET_OF_THE_OPERATOR=x viv run --agent "$AGENT" -- ext-probe --mode env
  [ "$output" = '{"env":"PATH VIVARY_CREDENTIAL VIVARY_SCOPE "}' ]
  run -0 viv run --agent "$AGENT" -- ext-probe --mode scope
  [ "$output" = '{}' ]
  run -0 viv run --agent "$AGENT" -- ext-probe --mode state
  [ "$output" = '{"listed":"no","read":"no"}' ]
  # negative control: root can list and read both
  ls "$STATE" >/dev/null
  head -c1 "$STATE/audit.db" >/dev/null
}

@test "a run past its timeout or its output cap is ended: 69, one line, nothing left running" {
  write_policy 2s
  start_broker
  local uid
  uid=$(probe_uid ext-probe)
  # negative control: while it sleeps, its processes are there to be found
  viv run --agent "$AGENT" -- ext-probe --mode sleep 2>/dev/null &
  local call=$!
  wait_for pgrep -u "$uid" sleep
  wait "$call" || true
  SECONDS=0
  run -69 --separate-stderr viv run --agent "$AGENT" -- ext-probe --mode sleep
  [ "$stderr" = "ext-probe: did not finish within 2s" ]
  [ "$SECONDS" -lt 15 ]
  wait_for sh -c "! pgrep -u $uid"
  run -69 --separate-stderr viv run --agent "$AGENT" -- ext-probe --mode flood
  [ "$stderr" = "ext-probe: printed more than 1048576 bytes on stdout" ]
  [ "$output" = "" ]
  wait_for sh -c "! pgrep -u $uid"
  run -69 --separate-stderr viv run --agent "$AGENT" -- ext-probe --mode fail
  [ "$stderr" = "ext-probe: no forecast for that place" ]
  run -0 viv-log --agent "$AGENT" --json
  [ "$(jq -r 'select(.kind == "result") | .exit' <<<"$output" | tr "\n" " ")" = "69 69 69 69 " ]
}

@test "its credential reaches it in its environment, never a record, a result or the jail" {
  write_policy
  start_broker
  run -0 --separate-stderr viv run --agent "$AGENT" -- ext-probe --mode secret
  [ "$(jq -r .length <<<"$output")" = "${#CANARY}" ]
  [ "$(jq -r .echo <<<"$output")" = "[secret scrubbed]" ]
  [ "$stderr" = "" ]
  [[ "$output" != *"$CANARY"* ]]
  run ! grep -q "$CANARY" "$RAN/log"
  run -0 viv-log --agent "$AGENT" --json
  [[ "$output" != *"$CANARY"* ]]
  [ "$(jq -r 'select(.kind == "result") | .scrubbed' <<<"$output")" = 1 ]
  [ "$(jq -r 'select(.kind == "call") | .credential' <<<"$output")" = ext-probe-key ]
  run ! grep -rq "$CANARY" "$STATE" --include='*.db*'
  run -0 viv run --agent "$AGENT" -- sh -c 'env; cat /run/vivary/capabilities.json'
  [[ "$output" != *"$CANARY"* ]]
  # negative control: without the secret in the vault the call is refused before it runs
  viv secret rm ext-probe-key
  local n
  n=$(wc -l <"$RAN/log")
  run -69 --separate-stderr viv run --agent "$AGENT" -- ext-probe --mode secret
  [[ "$stderr" == "ext-probe: credential 'ext-probe-key' unavailable: "* ]]
  [ "$(wc -l <"$RAN/log")" -eq "$n" ]
}

@test "the EXAMPLES of vivary-capabilities(7) run as written, moved under the test's directory" {
  local page="$VIV_ROOT/man/vivary-capabilities.7" block commands expected
  block=$(sed -n '/^\.SH EXAMPLES/,/^\.SH SEE ALSO/p' "$page" | sed -n '/^\.EX$/,/^\.EE$/p' | sed '1d;$d' | sed 's/\\-/-/g')
  expected=$(tail -n 1 <<<"$block")
  commands=$(sed '$d' <<<"$block" | sed 's/^# //' | sed "s|/usr/local/lib/vivary/|$LIB/man/|g; s|/etc/vivary/policy.kdl|$POLICY|g; s|\"writer\"|\"$AGENT\"|; s|--agent writer|--agent $AGENT|")
  [[ "$commands" == *"viv caps pin $LIB/man/text-word-count"* ]]
  mkdir -m 755 "$LIB/man"
  : >"$POLICY"
  cd "$VIV_ROOT"
  run -0 --separate-stderr bash -euc "$commands"
  [ "${lines[-1]}" = "$expected" ]
  [ "$expected" = '{"words":4,"lines":1}' ]
}
