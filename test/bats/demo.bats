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

@test "scripts/demo-model.sh: an agent loop in the jail thinks through the governed endpoint, acts, is refused, and all of it is on the record" {
  run --separate-stderr env VIVARY_DEMO_SKIP_SETUP=1 "$VIV_ROOT/scripts/demo-model.sh"
  [ "$status" -eq 0 ]
  [[ "$output" == *"== the agent exited 0;"* ]]
  [[ "$output" == *"/srv/vivary-demo/notes/status.md (38 bytes)"* ]]
  [[ "$output" == *"agent: refused (exit 77): fs-file-write: cannot write '/etc/motd': outside granted path '/srv/vivary-demo/notes'"* ]]
  # The model was told of the refusal, and answered with it.
  [[ "$output" == *"model: The note is in /srv/vivary-demo/notes/status.md. I could not put a copy in /etc/motd: fs-file-write: cannot write"* ]]
  [[ "$output" == *"saw the vault's key on 4 of 4 requests"* ]]
  # Four model calls and four results with their tokens, the tool results fed back as prompts.
  [ "$(grep -c ' kind=result cap=model-complete .* tokens=19 ' <<<"$output")" -eq 4 ]
  [[ "$output" == *' kind=call cap=model-complete '*' prompt="[error] fs-file-write: cannot write '"'/etc/motd'"* ]]
  [[ "$output" == *" kind=deny cap=fs-file-write "*"stage=authorize exit=77 "* ]]
  [[ "$output" =~ ok:\ [0-9]+\ records,\ head ]]
}
