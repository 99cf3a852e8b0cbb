#!/usr/bin/env bats
# The README's first command, scripts/demo.sh, on this built checkout: every step it shows happens
# (a real Radicale event, a light switched, an order approved by the script as the operator), every
# refusal it shows is a refusal with exit 77, and its log verifies. Keeps the README true.

load helpers

@test "scripts/demo.sh runs the governed agent end to end and its log verifies" {
  run --separate-stderr env VIVARY_DEMO_SKIP_SETUP=1 "$VIV_ROOT/scripts/demo.sh"
  [ "$status" -eq 0 ]
  [[ "$output" == *"== the agent exited 0;"* ]]
  [[ "$output" == *"/srv/vivary-demo/reports/summary.md (30 bytes)"* ]]
  [[ "$output" == *"== the calendar 'work' on Radicale holds 1 event(s)"* ]]
  [[ "$output" == *'{"device_id":"light.kitchen","new_state":"on",'* ]]
  [[ "$output" == *"== operator: viv approve "* ]]
  [[ "$output" == *'{"order_id":'*'"total_amount":"25.00","currency":"EUR"'* ]]
  # Seven refusals, each with 77: a read and a write outside the grant, a symlink, a redirect,
  # a foreign attendee, an ungranted device, an ungranted contact.
  [ "$(grep -c '^agent: refused with exit 77$' <<<"$output")" -eq 7 ]
  [[ "$output" == *"agent: no network"* ]]
  [[ "$output" =~ ok:\ [0-9]+\ records,\ head ]]
}
