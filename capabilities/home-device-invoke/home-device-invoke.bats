#!/usr/bin/env bats
# home-device-invoke through the real stub, broker and jail, against a loopback server that speaks
# Home Assistant's REST API and checks the bearer token (test/fake-home-assistant.ts). A random
# canary is the token: it must reach that server and nothing else, not the jail, viv-log, the
# bytes of audit.db or any result, even when the provider echoes it back. Devices and actions
# outside the grant are denied before any request; each provider failure is one line.
#
# Scripts passed to `sh -c` inside the jail are single-quoted on purpose: their variables expand
# in the jail. bats' `run` sets stderr and stderr_lines.
# shellcheck disable=SC2016,SC2154

load ../../test/bats/helpers

setup() {
  viv_setup
  AGENT="h$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  CANARY="canary-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export VIVARY_VAULT_KEY="$BATS_TEST_TMPDIR/keys/vault.key"
  printf '%s' "$CANARY" >"$BATS_TEST_TMPDIR/token"
  RECEIVED="$BATS_TEST_TMPDIR/received.ndjson"
  : >"$RECEIVED"
  "$VIV_ROOT/node_modules/.bin/bun" "$VIV_ROOT/test/fake-home-assistant.ts" \
    --token-file "$BATS_TEST_TMPDIR/token" --log "$RECEIVED" >"$BATS_TEST_TMPDIR/fake.url" 2>"$BATS_TEST_TMPDIR/fake.err" &
  FAKE_PID=$!
  wait_for test -s "$BATS_TEST_TMPDIR/fake.url"
  FAKE_URL=$(head -n 1 "$BATS_TEST_TMPDIR/fake.url")
  write_policy
  start_broker
  export AGENT CANARY RECEIVED
}

teardown() {
  stop_broker
  if [ -n "${FAKE_PID:-}" ]; then kill "$FAKE_PID" 2>/dev/null || true; fi
}

# write_policy [DEVICE_NODES]: the agent's policy, its grant naming DEVICE_NODES (default: a few).
write_policy() {
  local devices=${1:-'device "light.kitchen" actions="on off set"
        device "switch.heater" actions="on off toggle"
        device "climate.living_room" actions="set"
        device "light.porch" actions="on"
        device "switch.echo_secret" actions="on"
        device "switch.server_error" actions="on"
        device "switch.garbage" actions="on"'}
  cat >"$POLICY" <<KDL
// The Home Assistant the agent acts through; its token is in the vault as ha-main.
provider "home" {
    kind "home-assistant"
    url "$FAKE_URL"
    credential "ha-main"
}
agent "$AGENT" {
    grant "home-device-invoke" {
        provider "home"
        $devices
    }
}
KDL
}

set_secret() {
  printf '%s\n' "${1:-$CANARY}" | viv secret set ha-main
}

hdi() {
  viv run --agent "$AGENT" -- home-device-invoke "$@"
}

received_count() {
  wc -l <"$RECEIVED" | tr -d ' '
}

# refute_canary TEXT: TEXT holds no spelling of the canary (secret_spellings).
refute_canary() {
  refute_secret "$1" "$CANARY"
}

@test "a light is turned on through Home Assistant with the injected token, and the call is recorded without it" {
  set_secret
  run -0 --separate-stderr hdi --device-id light.kitchen --action on
  [[ "$output" =~ ^\{\"device_id\":\"light.kitchen\",\"new_state\":\"on\",\"acknowledged_at\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z\"\}$ ]]
  [ "$stderr" = "" ]
  [ "$(jq -c '[.method, .path, .auth_ok, .body]' "$RECEIVED")" = "$(printf '%s\n' \
    '["GET","/api/states/light.kitchen",true,null]' \
    '["POST","/api/services/light/turn_on",true,{"entity_id":"light.kitchen"}]' \
    '["GET","/api/states/light.kitchen",true,null]')" ]
  run -0 viv-log --agent "$AGENT" --cap home-device-invoke
  [[ "${lines[0]}" == *" kind=call cap=home-device-invoke "*"args.device_id=light.kitchen args.action=on"*" provider=home credential=ha-main" ]]
  [[ "${lines[1]}" == *" kind=result cap=home-device-invoke "*" exit=0 scrubbed=0" ]]
}

@test "set dims a light and sets a thermostat, off and toggle switch, each state read back" {
  set_secret
  run -0 --separate-stderr hdi --device-id light.kitchen --action set --value 40
  [ "$(jq -c 'del(.acknowledged_at)' <<<"$output")" = '{"device_id":"light.kitchen","new_state":"on","value":40}' ]
  run -0 --separate-stderr hdi --device-id climate.living_room --action set --value 21.5
  [ "$(jq -c 'del(.acknowledged_at)' <<<"$output")" = '{"device_id":"climate.living_room","new_state":"heat","value":21.5}' ]
  run -0 --separate-stderr hdi --device-id switch.heater --action toggle
  [ "$(jq -r .new_state <<<"$output")" = on ]
  run -0 --separate-stderr hdi --device-id switch.heater --action off
  [ "$(jq -r .new_state <<<"$output")" = off ]
  [ "$(jq -c 'select(.method == "POST") | [.path, .body]' "$RECEIVED")" = "$(printf '%s\n' \
    '["/api/services/light/turn_on",{"entity_id":"light.kitchen","brightness_pct":40}]' \
    '["/api/services/climate/set_temperature",{"entity_id":"climate.living_room","temperature":21.5}]' \
    '["/api/services/switch/toggle",{"entity_id":"switch.heater"}]' \
    '["/api/services/switch/turn_off",{"entity_id":"switch.heater"}]')" ]
}

@test "devices and actions outside the grant are denied with 77 and Home Assistant sees nothing" {
  set_secret
  run -77 --separate-stderr hdi --device-id light.hall --action on
  [ "$output" = "" ]
  [ "${stderr_lines[0]}" = "home-device-invoke: cannot turn on 'light.hall': not a granted device" ]
  run -77 --separate-stderr hdi --device-id light.kitchen --action toggle
  [ "${stderr_lines[0]}" = "home-device-invoke: cannot toggle 'light.kitchen': action 'toggle' is not granted on it (granted: on off set)" ]
  run -77 --separate-stderr hdi --device-id climate.living_room --action off
  [ "${stderr_lines[0]}" = "home-device-invoke: cannot turn off 'climate.living_room': action 'off' is not granted on it (granted: set)" ]
  # A device renamed in Home Assistant is another entity id: not granted until the policy says so.
  run -77 --separate-stderr hdi --device-id light.kitchen_2 --action on
  [ "${stderr_lines[0]}" = "home-device-invoke: cannot turn on 'light.kitchen_2': not a granted device" ]
  run -77 --separate-stderr hdi --device-id LIGHT.KITCHEN --action on
  [ "${stderr_lines[0]}" = "home-device-invoke: cannot turn on 'LIGHT.KITCHEN': not an entity id (domain.object_id: lower-case letters, digits and single underscores)" ]
  run -77 --separate-stderr hdi --device-id light.kitchen --action on --provider other
  [ "${stderr_lines[0]}" = "home-device-invoke: cannot act through provider 'other': not granted" ]
  [ "$(received_count)" -eq 0 ]
  [ "$(viv-log --agent "$AGENT" --json | jq -r 'select(.kind == "deny") | .stage' | sort | uniq -c | tr -s ' ')" = " 6 authorize" ]
}

@test "a granted device Home Assistant no longer knows is 69, and nothing is switched" {
  set_secret
  run -69 --separate-stderr hdi --device-id light.porch --action on
  [ "$output" = "" ]
  [ "${stderr_lines[0]}" = "home-device-invoke: device 'light.porch' is unknown to provider 'home' (HTTP 404)" ]
  [ "$(jq -c '[.method, .path]' "$RECEIVED")" = '["GET","/api/states/light.porch"]' ]
}

@test "bad values are refused before any service call" {
  set_secret
  run -64 --separate-stderr hdi --device-id light.kitchen --action set
  [ "${stderr_lines[0]}" = "home-device-invoke: --action set needs --value" ]
  run -64 --separate-stderr hdi --device-id light.kitchen --action on --value 5
  [ "${stderr_lines[0]}" = "home-device-invoke: --value is for --action set only, not on" ]
  run -64 --separate-stderr hdi --device-id light.kitchen --action set --value 4O
  [ "${stderr_lines[0]}" = "home-device-invoke: option '--value' needs a number, not '4O'" ]
  run -65 --separate-stderr hdi --device-id light.kitchen --action set --value 150
  [ "${stderr_lines[0]}" = "home-device-invoke: cannot set 'light.kitchen': --value for a light's brightness is a whole number of percent from 0 to 100" ]
  run -65 --separate-stderr hdi --device-id climate.living_room --action set --value 90
  [ "${stderr_lines[0]}" = "home-device-invoke: cannot set 'climate.living_room': --value 90 is outside the device's range, 7 to 35" ]
  [ "$(jq -r 'select(.method == "POST") | .path' "$RECEIVED" | wc -l)" -eq 0 ]
}

@test "a wrong token, a server error and a reply that is not JSON are one line each" {
  set_secret "wrong-token"
  run -69 --separate-stderr hdi --device-id light.kitchen --action on
  [ "${stderr_lines[0]}" = "home-device-invoke: provider 'home' refused the credential (HTTP 401)" ]
  [ "$(jq -r .auth_ok "$RECEIVED")" = false ]
  set_secret
  run -69 --separate-stderr hdi --device-id switch.server_error --action on
  [ "${stderr_lines[0]}" = "home-device-invoke: provider 'home' failed: HTTP 500" ]
  run -65 --separate-stderr hdi --device-id switch.garbage --action on
  [ "${stderr_lines[0]}" = "home-device-invoke: provider 'home' sent a reply that is not JSON (HTTP 200)" ]
  [ "${#stderr_lines[@]}" -eq 1 ]
}

@test "a missing secret denies the call at the credential stage and Home Assistant sees nothing" {
  run -69 --separate-stderr hdi --device-id light.kitchen --action on
  [ "${stderr_lines[0]}" = "home-device-invoke: credential 'ha-main' unavailable: secret 'ha-main' is not in the vault" ]
  [ "$(received_count)" -eq 0 ]
}

@test "the canary reaches Home Assistant but never the jail, a result, viv-log or audit.db, even echoed back" {
  set_secret
  run -0 --separate-stderr viv run --agent "$AGENT" -- sh -c '
    home-device-invoke --device-id light.kitchen --action on
    home-device-invoke --device-id switch.echo_secret --action on
    echo "exit=$?"
    env
    for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr "\0" "\n" <"$f"; done 2>/dev/null
    exit 0
  '
  [[ "$output" == *"exit=69"* ]]
  [ "$(grep -c '"auth_ok":true' "$RECEIVED")" -eq 5 ]
  refute_canary "$output"
  refute_canary "$stderr"
  [[ "$stderr" == *"home-device-invoke: provider 'home' refused the call: token [secret scrubbed] is not welcome here (HTTP 400)"* ]]
  run -0 viv-log --json
  refute_canary "$output"
  [ "$(jq -r 'select(.kind == "result" and .exit == 69) | .scrubbed' <<<"$output")" = 1 ]
  stop_broker
  run -1 grep -aqF -f <(secret_spellings "$CANARY") "$STATE/audit.db"
}

@test "a device node the policy cannot honour is a configuration error with its line" {
  write_policy 'device "switch.heater" actions="on set"'
  run -78 --separate-stderr viv policy check "$POLICY"
  [[ "$stderr" == *"$POLICY:10: device 'switch.heater' refused: action 'set' is not one a switch takes (on off toggle)"* ]]
  write_policy 'device "light.kitchen"'
  run -78 --separate-stderr viv policy check "$POLICY"
  [[ "$stderr" == *"$POLICY:10: device 'light.kitchen' refused: needs actions=\"…\", some of on off toggle set"* ]]
}

@test "viv caps lists home-device-invoke as medium risk" {
  run -0 viv caps
  [[ "$output" == *$'home-device-invoke\trisk=medium\tscopes=device,provider\t'* ]]
}

@test "every example in home-device-invoke(1) runs in a jail and prints what the page says" {
  set_secret
  check_man_examples home-device-invoke 3
}
