#!/usr/bin/env bats
# The MCP bridge (viv-mcp) against a real broker and real jails, driven by the official MCP SDK's
# own Client over its StdioClientTransport (test/mcp-client.mjs): the tool list is exactly the
# grants with the schemas `CAP --help` prints; a call takes effect on the host; a denial, an
# unlisted tool and malformed arguments come back as isError results with the one-line
# diagnostic; many calls share one broker connection (the log's conn field); a broker killed
# while a call is in flight fails that call cleanly and the session goes on with the next broker; a
# call held for approval reports progress to a client that asked for it.
# The client runs on the host (spawning `viv run … -- viv-mcp`) and, once, inside the jail.
# shellcheck disable=SC2016,SC2154

load helpers

setup() {
  viv_setup
  mkdir -p "$HOST/out" "$BATS_TEST_TMPDIR/ws"
  chmod 0755 "$BATS_TEST_TMPDIR/ws"
  CLIENT="$VIV_ROOT/test/mcp-client.mjs"
  cat >"$POLICY" <<KDL
// mcp-a: two capabilities, under a memory limit the bridge must start within.
agent "mcp-a" {
    workspace "$BATS_TEST_TMPDIR/ws/mcp-a"
    limits memory="512M"
    grant "fs-file-write" { path "$HOST/out"; }
    grant "web-page-read" { url "https://example.org/*"; }
}
// mcp-gated: each write waits for an operator.
agent "mcp-gated" {
    grant "fs-file-write" {
        path "$HOST/out"
        approval timeout="5m"
    }
}
KDL
  CLIENT_PID=""
}

teardown() {
  if [ -n "$CLIENT_PID" ]; then
    kill -TERM "$CLIENT_PID" 2>/dev/null || true
    wait "$CLIENT_PID" 2>/dev/null || true
  fi
  stop_broker
}

# mcp AGENT STEPS-JSON: the SDK client on the host, its server `viv run --agent AGENT -- viv-mcp`.
mcp() {
  node "$CLIENT" "$2" -- viv run --agent "$1" -- viv-mcp
}

# write_step PATH CONTENT: a tools/call step of fs-file-write.
write_step() {
  jq -cn --arg p "$1" --arg c "$2" '{op: "call", name: "fs-file-write", arguments: {path: $p, content: $c}}'
}

# man_example N: the Nth example (.EX block) of viv-mcp(1), as it reads.
man_example() {
  python3 - "$VIV_ROOT/man/viv-mcp.1" "$1" <<'PY'
import re, sys
blocks = re.findall(r"^\.EX\n(.*?)^\.EE$", open(sys.argv[1]).read(), re.S | re.M)
text = blocks[int(sys.argv[2]) - 1]
for roff, plain in (("\\-", "-"), ("\\(aq", "'"), ("\\(dq", '"'), ("\\e", "\\"), ("\\&", "")):
    text = text.replace(roff, plain)
sys.stdout.write(text)
PY
}

# step N: the JSON line of the Nth step's outcome (1-based; line 1 is the connection's).
step() { sed -n "$(($1 + 1))p" <<<"$output"; }

@test "viv-mcp is on PATH in a jail with capabilities, offers MCP 2025-11-25, and its man page example runs" {
  run -0 viv run --agent mcp-a -- sh -c 'command -v viv-mcp; viv-mcp --help | head -n 1'
  [ "${lines[0]}" = /run/vivary/bin/viv-mcp ]
  [ "${lines[1]}" = "usage: viv-mcp" ]
  # EXAMPLES: the command after "$ ", then the start of each line it prints (up to "...").
  local example
  example=$(man_example 5)
  [[ "$example" == '$ printf '* ]]
  run -0 --separate-stderr viv run --agent mcp-a -- sh -c "$(head -n 1 <<<"$example" | cut -c3-)"
  [ "${#lines[@]}" -eq 2 ]
  local i want
  for i in 0 1; do
    want=$(sed -n "$((i + 2))p" <<<"$example")
    [[ "${lines[$i]}" == "${want%...}"* ]]
  done
  run -0 --separate-stderr mcp mcp-a '[]'
  [ "$(jq -r .protocolVersion <<<"${lines[0]}")" = 2025-11-25 ]
  [ "$(jq -r .server.name <<<"${lines[0]}")" = viv-mcp ]
  [ "${lines[1]}" = '{"op":"closed"}' ]
}

@test "the tool list is exactly the granted capabilities, each schema the one CAP --help prints" {
  run -0 --separate-stderr mcp mcp-a '[{"op":"list"}]'
  local tools
  tools=$(step 1)
  [ "$(jq -c '[.tools[].name]' <<<"$tools")" = '["fs-file-write","web-page-read"]' ]
  local cap help
  for cap in fs-file-write web-page-read; do
    help=$(viv run --agent mcp-a -- "$cap" --help)
    [ "$(jq -S --arg c "$cap" '.tools[] | select(.name == $c) | .inputSchema' <<<"$tools")" = "$(jq -S . <<<"$help")" ]
    [ "$(jq -r --arg c "$cap" '.tools[] | select(.name == $c) | .description' <<<"$tools")" = "$(jq -r .description <<<"$help")" ]
  done
  # Negative control: a capability that is not granted has no tool.
  [ "$(jq '[.tools[] | select(.name == "messaging-message-send")] | length' <<<"$tools")" = 0 ]
}

@test "a tool call writes the file on the host and returns the capability's result" {
  run -0 --separate-stderr mcp mcp-a "[$(write_step "$HOST/out/a.txt" 'hello from MCP')]"
  [ "$(jq -c .result.isError <<<"$(step 1)")" = false ]
  [ "$(jq -r '.result.content[0].text | fromjson | .bytes_written' <<<"$(step 1)")" = 14 ]
  [ "$(cat "$HOST/out/a.txt")" = "hello from MCP" ]
  run -0 viv-log --agent mcp-a --cap fs-file-write
  [[ "$output" == *"kind=call cap=fs-file-write conn="*" args.path=$HOST/out/a.txt args.content=\"hello from MCP\""* ]]
  [[ "$output" == *"kind=result cap=fs-file-write conn="*" exit=0"* ]]
}

@test "a call outside the grant is an isError result with the broker's diagnostic, and nothing is written" {
  mkdir -p "$HOST/elsewhere"
  run -0 --separate-stderr mcp mcp-a "[$(write_step "$HOST/elsewhere/x.txt" nope)]"
  [ "$(jq -c .result <<<"$(step 1)")" = "$(jq -cn --arg t "fs-file-write: cannot write '$HOST/elsewhere/x.txt': outside granted path '$HOST/out'" '{content: [{type: "text", text: $t}], isError: true}')" ]
  [ ! -e "$HOST/elsewhere/x.txt" ]
  run -0 viv-log --agent mcp-a --cap fs-file-write
  [[ "$output" == *"kind=deny cap=fs-file-write conn="*" stage=authorize exit=77 reason="* ]]
}

@test "a tool the agent was not granted goes to the broker, which refuses and records it" {
  run -0 --separate-stderr mcp mcp-a '[{"op":"call","name":"messaging-message-send","arguments":{"to":"+15550100000","body":"hi"}}]'
  [ "$(jq -c .result.isError <<<"$(step 1)")" = true ]
  [[ "$(jq -r '.result.content[0].text' <<<"$(step 1)")" == "messaging-message-send: "*"not granted"* ]]
  run -0 viv-log --agent mcp-a --cap messaging-message-send
  [[ "$output" == *"kind=deny cap=messaging-message-send conn="*" stage=resolve exit=77 "* ]]
}

@test "malformed arguments are isError results: a wrong type from the bridge, the rest from the broker" {
  local steps
  steps=$(jq -cn --arg p "$HOST/out/m.txt" '[
    {op: "call", name: "fs-file-write", arguments: {path: $p, content: 5}},
    {op: "call", name: "fs-file-write", arguments: {path: $p}},
    {op: "call", name: "fs-file-write", arguments: {path: $p, content: "x", mode: "0600"}},
    {op: "call", name: "fs-file-write", arguments: {path: $p, content: "x", encoding: "rot13"}},
    {op: "call", name: "fs-file-write"}
  ]')
  run -0 --separate-stderr mcp mcp-a "$steps"
  local want=(
    "fs-file-write: argument 'content' must be a string, not a number"
    "fs-file-write: missing required option '--content'"
    "fs-file-write: unknown option '--mode'"
    "fs-file-write: option '--encoding' must be one of 'utf-8', 'base64'"
    "fs-file-write: missing required option '--path'"
  )
  local i
  for i in 1 2 3 4 5; do
    [ "$(jq -c .result.isError <<<"$(step "$i")")" = true ]
    [ "$(jq -r '.result.content[0].text' <<<"$(step "$i")")" = "${want[$((i - 1))]}" ]
  done
  [ ! -e "$HOST/out/m.txt" ]
  # The bridge refused the first itself; the broker refused and recorded the other four.
  [ "$(viv-log --agent mcp-a --cap fs-file-write --json | jq -s '[.[] | select(.kind == "invalid")] | length')" = 4 ]
}

@test "many calls go over one broker connection, one hello, in order" {
  local steps
  steps=$(for i in $(seq 1 25); do write_step "$HOST/out/n$i.txt" "call $i"; done | jq -cs .)
  run -0 --separate-stderr mcp mcp-a "$steps"
  [ "$(grep -c '"isError":false' <<<"$output")" = 25 ]
  local i
  for i in $(seq 1 25); do [ "$(cat "$HOST/out/n$i.txt")" = "call $i" ]; done
  local log
  log=$(viv-log --agent mcp-a --json)
  [ "$(jq -s '[.[] | select(.kind == "call")] | length' <<<"$log")" = 25 ]
  [ "$(jq -s '[.[] | select(.kind == "call" or .kind == "result") | .conn] | unique | length' <<<"$log")" = 1 ]
  [ "$(jq -s '[.[] | select(.kind == "hello")] | length' <<<"$log")" = 1 ]
  [ "$(jq -rs '[.[] | select(.kind == "call") | .args.content] | join(",")' <<<"$log")" = "$(seq -f 'call %g' 1 25 | paste -sd,)" ]
  # Negative control: the same writes through the stub take one connection each.
  viv run --agent mcp-a -- sh -c "fs-file-write --path $HOST/out/s1 --content a && fs-file-write --path $HOST/out/s2 --content b" >/dev/null
  [ "$(viv-log --agent mcp-a --json | jq -s '[.[] | select(.kind == "call") | .conn] | unique | length')" = 3 ]
}

@test "calls a client sends all at once wait their turn on the one connection, each with its own result" {
  local steps
  steps=$(for i in $(seq 1 12); do write_step "$HOST/out/p$i.txt" "parallel $i"; done | jq -cs '[{op: "parallel", calls: [.[] | {name, arguments}]}]')
  run -0 --separate-stderr mcp mcp-a "$steps"
  local results
  results=$(step 1)
  [ "$(jq '.results | length' <<<"$results")" = 12 ]
  local i
  for i in $(seq 1 12); do
    [ "$(jq -r --argjson i "$i" '.results[$i - 1].content[0].text | fromjson | .path' <<<"$results")" = "$HOST/out/p$i.txt" ]
    [ "$(cat "$HOST/out/p$i.txt")" = "parallel $i" ]
  done
  [ "$(viv-log --agent mcp-a --json | jq -s '[.[] | select(.kind == "call") | .conn] | unique | length')" = 1 ]
  # Nothing broke the protocol (two calls in flight on one connection would be a violation).
  [ "$(viv-log --agent mcp-a --json | jq -s '[.[] | select(.kind == "protocol")] | length')" = 0 ]
}

@test "a policy reload mid-session sends tools/list_changed, and the next list is the new grants" {
  start_broker
  local out="$BATS_TEST_TMPDIR/client.out"
  node "$CLIENT" '[{"op":"list"},{"op":"wait-tools-changed","ms":20000},{"op":"list"}]' -- viv run --agent mcp-a -- viv-mcp >"$out" 2>"$BATS_TEST_TMPDIR/client.err" &
  CLIENT_PID=$!
  wait_for grep -q '"op":"list"' "$out"
  # web-page-read is no longer granted to mcp-a.
  sed -i '/grant "web-page-read"/d' "$POLICY"
  kill -HUP "$BROKER_PID"
  wait_for grep -q '"op":"closed"' "$out"
  wait "$CLIENT_PID"
  CLIENT_PID=""
  output=$(cat "$out")
  [ "$(jq -c .capabilities.tools <<<"$(step 0)")" = '{"listChanged":true}' ]
  [ "$(jq -c '[.tools[].name]' <<<"$(step 1)")" = '["fs-file-write","web-page-read"]' ]
  [ "$(jq -c .seen <<<"$(step 2)")" = 1 ]
  [ "$(jq -c '[.tools[].name]' <<<"$(step 3)")" = '["fs-file-write"]' ]
}

@test "a broker killed while a call is in flight fails that call cleanly; the next call reaches the new broker" {
  start_broker
  local out="$BATS_TEST_TMPDIR/client.out"
  local steps
  steps=$(jq -cs . <<<"$(write_step "$HOST/out/held.txt" held) $(write_step /etc/vivary-mcp-test after)")
  node "$CLIENT" "$steps" -- viv run --agent mcp-gated -- viv-mcp >"$out" 2>"$BATS_TEST_TMPDIR/client.err" &
  CLIENT_PID=$!
  wait_for sh -c '[ "$(viv approvals | wc -l)" -ge 1 ]'
  kill -KILL "$BROKER_PID"
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
  wait_for grep -q '"op":"closed"' "$out"
  wait "$CLIENT_PID"
  CLIENT_PID=""
  output=$(cat "$out")
  [ "$(jq -c .result <<<"$(step 1)")" = '{"content":[{"type":"text","text":"viv-mcp: the broker closed the connection before the call'"'"'s result; it may or may not have taken effect"}],"isError":true}' ]
  [ ! -e "$HOST/out/held.txt" ]
  # The session went on: the next call reached the broker viv run started, which decided it.
  [ "$(jq -r '.result.content[0].text' <<<"$(step 2)")" = "fs-file-write: cannot write '/etc/vivary-mcp-test': outside granted path '$HOST/out'" ]
  local conns
  conns=$(viv-log --agent mcp-gated --json | jq -s '[.[] | select(.kind == "approval-request" or .kind == "deny") | .conn] | unique | length')
  [ "$conns" = 2 ]
}

@test "a call held for approval reports progress, so a timeout that restarts on progress outlasts the wait; one without a token times out" {
  start_broker
  local out="$BATS_TEST_TMPDIR/client.out"
  local steps
  steps=$(jq -cs . <<<"$(write_step "$HOST/out/patient.txt" patient | jq -c '. + {timeout: 8000, progress: true}')
    $(write_step "$HOST/out/hasty.txt" hasty | jq -c '. + {timeout: 8000}')")
  node "$CLIENT" "$steps" -- viv run --agent mcp-gated -- viv-mcp >"$out" 2>"$BATS_TEST_TMPDIR/client.err" &
  CLIENT_PID=$!
  # The first call waits 13 s for its operator, well past its client's 8 s timeout.
  wait_for sh -c '[ "$(viv approvals | wc -l)" -ge 1 ]'
  sleep 13
  viv approve "$(viv approvals --json | jq -r .id)"
  # The second, the control, asks for no progress: its client gives up at 8 s and closes.
  wait_for grep -q '"op":"closed"' "$out"
  wait "$CLIENT_PID"
  CLIENT_PID=""
  output=$(cat "$out")
  echo "$output"
  [ "$(jq -r .name <<<"$(step 1)")" = fs-file-write ]
  [ "$(jq -r '.result.isError' <<<"$(step 1)")" = false ]
  [[ "$(jq -r '.result.content[0].text' <<<"$(step 1)")" == *'"bytes_written":7'* ]]
  [ "$(jq -r .progress <<<"$(step 1)")" -ge 2 ]
  [ "$(cat "$HOST/out/patient.txt")" = patient ]
  [ "$(jq -r .code <<<"$(step 2)")" = -32001 ]
  [[ "$(jq -r .error <<<"$(step 2)")" == *"timed out"* ]]
  [ ! -e "$HOST/out/hasty.txt" ]
  # The call its client gave up on is withdrawn once the bridge is gone, not left to an operator.
  wait_for sh -c 'viv-log --agent mcp-gated | grep "kind=approval " | grep -q "decision=withdrawn"'
  [ "$(viv approvals | wc -l)" -eq 0 ]
}

@test "an MCP client inside the jail starts viv-mcp as viv-mcp(1) configures Claude Code and Codex CLI" {
  # The SDK lives in node_modules, which the jail cannot see: the client goes in bundled.
  viv run --agent mcp-a -- true
  "$VIV_ROOT/node_modules/.bin/bun" build --target=node --outfile "$BATS_TEST_TMPDIR/ws/mcp-a/client.mjs" "$CLIENT" >/dev/null
  chmod a+r "$BATS_TEST_TMPDIR/ws/mcp-a/client.mjs"
  local claude codex
  claude=$(man_example 2 | jq -c '.mcpServers.vivary | [.command] + .args')
  codex=$(man_example 3 | python3 -c 'import json, sys, tomllib; s = tomllib.loads(sys.stdin.read())["mcp_servers"]["vivary"]; print(json.dumps([s["command"], *s["args"]]))')
  [ "$claude" = '["viv-mcp"]' ]
  [ "$codex" = '["viv-mcp"]' ]
  local steps
  steps=$(jq -cs . <<<"{\"op\":\"list\"} $(write_step "$HOST/out/inside.txt" 'from inside')")
  run -0 --separate-stderr viv run --agent mcp-a -- node --jitless --no-expose-wasm /workspace/client.mjs "$steps" -- "$(jq -r '.[0]' <<<"$claude")"
  [ "$(jq -r .protocolVersion <<<"$(step 0)")" = 2025-11-25 ]
  [ "$(jq -c '[.tools[].name]' <<<"$(step 1)")" = '["fs-file-write","web-page-read"]' ]
  [ "$(jq -c .result.isError <<<"$(step 2)")" = false ]
  [ "$(cat "$HOST/out/inside.txt")" = "from inside" ]
}

@test "a client on the host starts the bridge in the agent's jail as viv-mcp(1) shows" {
  local cmd
  mapfile -t cmd < <(man_example 4 | jq -r '.mcpServers.researcher | [.command] + .args | .[]' | sed 's/^researcher$/mcp-a/')
  [ "${cmd[*]}" = "viv run --agent mcp-a -- viv-mcp" ]
  run -0 --separate-stderr node "$CLIENT" "[$(write_step "$HOST/out/host.txt" 'from the host')]" -- "${cmd[@]}"
  [ "$(jq -c .result.isError <<<"$(step 1)")" = false ]
  [ "$(cat "$HOST/out/host.txt")" = "from the host" ]
}
