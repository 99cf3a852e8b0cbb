#!/usr/bin/env bats
# Claude Code, the real client (@anthropic-ai/claude-code from the npm registry, pinned in
# test/agents/claude and installed there by scripts/setup.sh; a native executable), runs
# headless inside a real jail, started by the command line of viv-mcp(1)'s EXAMPLES: its model
# requests go through the jail's model endpoint and the broker to the Anthropic fixture, which
# follows the script of test/scripts-claude.ts (the prompt's "call TOOL JSON" lines, one a turn,
# then an answer that lists what each call returned), and its tool calls go through viv-mcp to
# the broker as governed capability calls. A random canary is the vault's key: it must reach the
# fixture and nothing in the jail. A token budget stops a run; a proxy inside the jail shows
# Claude Code tries no other connection.
#
# The jail sees the host's /usr, not this checkout, so each test's workspace holds a hard link to
# the installed executable (a copy where links cannot be made); a user installs it with
# `npm install -g` under /usr/local instead, and calls it `claude`.
# shellcheck disable=SC2016,SC2154

load helpers

CLAUDE_VERSION=2.1.332
CLAUDE_BIN="$VIV_ROOT/test/agents/claude/node_modules/@anthropic-ai/claude-code/bin/claude.exe"

setup_file() {
  if [ ! -x "$CLAUDE_BIN" ]; then
    echo "Claude Code is not installed in test/agents/claude: run scripts/setup.sh" >&2
    return 1
  fi
  [ "$("$CLAUDE_BIN" --version)" = "$CLAUDE_VERSION (Claude Code)" ]
  ln "$CLAUDE_BIN" "$BATS_FILE_TMPDIR/claude" 2>/dev/null || cp "$CLAUDE_BIN" "$BATS_FILE_TMPDIR/claude"
  AGENT="cc$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')"
  export AGENT
}

setup() {
  viv_setup
  mkdir -p "$HOST/out" "$HOST/elsewhere"
  KEY="canary-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export VIVARY_VAULT_KEY="$BATS_TEST_TMPDIR/keys/vault.key"
  printf '%s' "$KEY" >"$BATS_TEST_TMPDIR/key"
  RECEIVED="$BATS_TEST_TMPDIR/received.ndjson"
  : >"$RECEIVED"
  "$VIV_ROOT/node_modules/.bin/bun" "$VIV_ROOT/test/scripts-claude.ts" --key-file "$BATS_TEST_TMPDIR/key" --log "$RECEIVED" \
    >"$BATS_TEST_TMPDIR/fake.url" 2>"$BATS_TEST_TMPDIR/fake.err" &
  FAKE_PID=$!
  wait_for test -s "$BATS_TEST_TMPDIR/fake.url"
  FAKE_URL=$(head -n 1 "$BATS_TEST_TMPDIR/fake.url")
  WS="$BATS_TEST_TMPDIR/ws"
  write_policy 'tokens max=10000000 per="day"'
  printf '%s\n' "$KEY" | viv secret set anthropic-key >/dev/null
  start_broker
  # The workspace: the agent's own, with the bridge configured as viv-mcp(1) shows, and the
  # executable (root's, read-only to the agent).
  mkdir -m 0700 "$WS"
  man_example mcp.json >"$WS/.mcp.json"
  local uid
  uid=$(agent_uid "$AGENT")
  chown -R "$uid:$uid" "$WS"
  ln "$BATS_FILE_TMPDIR/claude" "$WS/claude" 2>/dev/null || cp "$BATS_FILE_TMPDIR/claude" "$WS/claude"
  export KEY RECEIVED WS
}

teardown() {
  if [ -n "${CLAUDE_PID:-}" ]; then
    kill "$CLAUDE_PID" 2>/dev/null || true
    wait "$CLAUDE_PID" 2>/dev/null || true
  fi
  stop_broker
  kill "${FAKE_PID:-}" 2>/dev/null || true
}

# write_policy BUDGET_NODE [WRITE_NODE]: the Anthropic provider, and the agent's grants.
write_policy() {
  cat >"$POLICY" <<KDL
provider "claude" {
    kind "anthropic"
    url "$FAKE_URL"
    credential "anthropic-key"
}
agent "$AGENT" {
    workspace "$WS"
    grant "model-complete" {
        provider "claude"
        model "claude-sonnet-*"
        $1
    }
    grant "fs-file-write" {
        path "$HOST/out"
        ${2:-}
    }
}
KDL
}

# man_example N|mcp.json|claude: the Nth example (.EX block) of viv-mcp(1) as it reads, or the
# .mcp.json of Claude Code, or the command line that runs Claude Code.
man_example() {
  python3 - "$VIV_ROOT/man/viv-mcp.1" "$1" <<'PY'
import re, sys
blocks = re.findall(r"^\.EX\n(.*?)^\.EE$", open(sys.argv[1]).read(), re.S | re.M)
pick = {"claude": lambda b: " claude \\-p " in b, "mcp.json": lambda b: '"vivary": { "command": "viv\\-mcp"' in b}
text = next(filter(pick[sys.argv[2]], blocks)) if sys.argv[2] in pick else blocks[int(sys.argv[2]) - 1]
for roff, plain in (("\\-", "-"), ("\\(aq", "'"), ("\\(dq", '"'), ("\\e", "\\"), ("\\&", "")):
    text = text.replace(roff, plain)
sys.stdout.write(text)
PY
}

# claude TASK [ARG...]: the command line of viv-mcp(1)'s example of Claude Code, for this
# agent, with TASK as its prompt and ARGs after it; Claude Code's JSON answer on stdout.
# With JAIL_WRAP set, its words come first in the jail (a wrapper that runs the rest); with
# DROP_ENV set, the example's environment assignment of that name is left out.
claude() {
  local example line=() arg cmd=() wrap=()
  example=$(man_example claude | sed -n '/^\$ /,/[^\\]$/p' | sed '1s/^\$ //')
  # The example's words, as the shell reads them, with TASK (which it names) as the prompt.
  # shellcheck disable=SC2034
  TASK=$1
  shift
  eval "line=($example)"
  for arg in "${line[@]}"; do
    case "$arg" in
      researcher) cmd+=("$AGENT") ;;
      claude) cmd+=(/workspace/claude) ;;
      "${DROP_ENV:-(none)}"=*) ;;
      --)
        cmd+=(--)
        if [ -n "${JAIL_WRAP:-}" ]; then
          read -ra wrap <<<"$JAIL_WRAP"
          cmd+=("${wrap[@]}")
        fi
        ;;
      *) cmd+=("$arg") ;;
    esac
  done
  "${cmd[@]}" "$@"
}

# task CALL...: a prompt of the scripted model's "call" lines, each "TOOL JSON".
task() {
  local c
  for c in "$@"; do printf 'call %s\n' "$c"; done
}

# write_call PATH CONTENT: a call of the bridge's fs-file-write, as Claude Code names it.
write_call() {
  jq -rn --arg p "$1" --arg c "$2" '"mcp__vivary__fs-file-write " + ({path: $p, content: $c} | tojson)'
}

received() {
  jq -c "$1" "$RECEIVED"
}

# until_pending N: waits (at most 120 s: Claude Code starts first) until N calls await an operator.
until_pending() {
  local _
  for _ in $(seq 1 1200); do
    [ "$(viv approvals | wc -l)" -ge "$1" ] && return 0
    sleep 0.1
  done
  echo "until_pending: no call waited for an operator" >&2
  return 1
}

@test "Claude Code in a jail writes a granted file through viv-mcp, is refused a write outside the grant, and goes on to its answer" {
  run -0 --separate-stderr claude "$(task "$(write_call "$HOST/out/a.txt" 'hello from Claude Code')" "$(write_call "$HOST/elsewhere/x.txt" 'nope')")"
  local answer="$output"
  [ "$(jq -r .is_error <<<"$answer")" = false ]
  [ "$(jq -c '[.num_turns, .usage.input_tokens, .usage.output_tokens]' <<<"$answer")" = '[4,48,28]' ]
  [ "$(jq -r .result <<<"$answer")" = "ok: {\"path\":\"$HOST/out/a.txt\",\"bytes_written\":22}
error: fs-file-write: cannot write '$HOST/elsewhere/x.txt': outside granted path '$HOST/out'" ]
  # The host: the granted write took effect, the refused one did not.
  [ "$(cat "$HOST/out/a.txt")" = "hello from Claude Code" ]
  [ ! -e "$HOST/elsewhere/x.txt" ]
  # The broker decided both, over the one connection of the bridge.
  run -0 viv-log --agent "$AGENT" --cap fs-file-write
  [ "${#lines[@]}" -eq 3 ]
  [[ "${lines[0]}" == *" kind=call cap=fs-file-write conn="*" args.path=$HOST/out/a.txt args.content=\"hello from Claude Code\" "* ]]
  [[ "${lines[1]}" == *" kind=result cap=fs-file-write conn="*" exit=0"* ]]
  [[ "${lines[2]}" == *" kind=deny cap=fs-file-write conn="*" stage=authorize exit=77 reason="* ]]
  [ "$(viv-log --agent "$AGENT" --cap fs-file-write --json | jq -rs '.[2].reason')" = "cannot write '$HOST/elsewhere/x.txt': outside granted path '$HOST/out'" ]
  [ "$(viv-log --agent "$AGENT" --cap fs-file-write --json | jq -s '[.[].conn] | unique | length')" = 1 ]
  # What Claude Code sent the model: the denial as a tool_result with is_error and the broker's
  # line, the granted call's result without it. Its MCP tools are deferred: it fetched the tool's
  # schema with ToolSearch first.
  [ "$(wc -l <"$RECEIVED")" -eq 4 ]
  [ "$(received '.body.messages[-1].content[] | select(.type == "tool_result") | .is_error // false' | tr '\n' ' ')" = "false false true " ]
  [[ "$(received '.body.messages[-1].content[] | select(.type == "tool_result" and .is_error) | .content' | tail -n 1)" == "\"fs-file-write: cannot write '$HOST/elsewhere/x.txt': outside granted path '$HOST/out'"* ]]
  [ "$(received '[.body.messages[] | select(.role == "assistant") | .content[] | select(.type == "tool_use") | .name]' | tail -n 1)" = '["ToolSearch","mcp__vivary__fs-file-write","mcp__vivary__fs-file-write"]' ]
  # Every request went through the governed endpoint: streamed Messages, Claude Code's own
  # version, betas and ?beta=true forwarded, the vault's key injected, never the placeholder.
  [ "$(received '[.path, .query, .stream, .key_ok, .placeholder_seen, .model]' | sort -u)" = '["/v1/messages","?beta=true",true,true,false,"claude-sonnet-4-5"]' ]
  [ "$(received '.headers["anthropic-version"]' | sort -u)" = '"2023-06-01"' ]
  [[ "$(received '.headers["anthropic-beta"]' | sort -u)" == '"claude-code-20250219,'* ]]
  # And each is in the log with its prompt and reply; nothing else was asked of the endpoint.
  run -0 viv-log --agent "$AGENT" --cap model-complete
  [ "$(grep -c ' kind=call cap=model-complete .* via=endpoint provider=claude credential=anthropic-key api=/v1/messages query="beta=true" model=claude-sonnet-4-5 stream=true ' <<<"$output")" -eq 4 ]
  [ "$(grep -c ' kind=result cap=model-complete .* exit=0 status=200 input_tokens=12 output_tokens=7 tokens=19 ' <<<"$output")" -eq 4 ]
  [ "$(grep -c ' kind=deny ' <<<"$output")" -eq 0 ]
  [[ "$output" == *'reply="[tool ToolSearch] {\"query\":\"select:mcp__vivary__fs-file-write\"}"'* ]]
  [[ "$output" == *"reply=\"[tool mcp__vivary__fs-file-write] {\\\"path\\\":\\\"$HOST/out/a.txt\\\""* ]]
}

@test "the key reaches the fixture and nothing in the jail: no process's environment or command line, no temporary file, nor Claude Code's settings, transcripts or workspace" {
  # Claude Code's own Bash tool, inside the jail, reads every process's environment and command
  # line there (Claude Code's, the bridge's, the relay's) while the session runs, and copies the
  # jail's own /tmp and /dev/shm (gone with the jail) into the workspace for the host to search.
  local dump='for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr "\0" "\n" <"$f"; echo; done | sort -u; mkdir /workspace/jail-files; cp -r /tmp /dev/shm /workspace/jail-files/ 2>/dev/null; true'
  run -0 --separate-stderr claude "call Bash $(jq -cn --arg c "$dump" '{command: $c, description: "the environments in the jail"}')" --allowedTools Bash
  local answer
  answer=$(jq -r .result <<<"$output")
  # A negative control first: the dump holds the endpoint and the placeholder key, so it saw the
  # environment Claude Code runs with.
  [[ "$answer" == "ok: "* ]]
  grep -qx 'ANTHROPIC_BASE_URL=http://127.0.0.1:4180/claude' <<<"$answer"
  grep -qx 'ANTHROPIC_API_KEY=vivary-injects-the-key' <<<"$answer"
  grep -qx 'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1' <<<"$answer"
  [[ "$answer" != *"$KEY"* ]]
  # The fixture got the key on every request; the model saw none of it.
  [ "$(received .key_ok | sort -u)" = true ]
  run ! grep -q "$KEY" "$RECEIVED"
  # Claude Code's files (settings, its transcripts, which hold the dump, and the MCP logs) are in
  # the workspace, with the jail's temporary files: the placeholder is there, the key is not.
  [ -f "$WS/.claude.json" ]
  [ -n "$(find "$WS/.claude/projects" -name '*.jsonl')" ]
  [ -n "$(find "$WS/jail-files/tmp" -type f)" ]
  run -0 grep -rl --exclude=claude 'ANTHROPIC_API_KEY=vivary-injects-the-key' "$WS"
  [[ "$output" == *"$WS/.claude/projects/"*".jsonl"* ]]
  run ! grep -rlF "$KEY" "$WS"
  # Nor in the log.
  run ! grep -qaF "$KEY" "$STATE/audit.db" "$STATE/audit.db-wal"
}

@test "a token budget stops Claude Code's run at the request that would cross it: refused in Anthropic's shape with 75, recorded, not retried" {
  stop_broker
  # Each request reserves its max_tokens (32000) plus its size (about 90 kB) and settles at what
  # the reply reports: 100007 here. The second fits under 250000; the third cannot.
  write_policy 'tokens max=250000 per="day"'
  start_broker
  run -1 --separate-stderr claude "$(printf 'usage 100000 7\n%s' "$(task "$(write_call "$HOST/out/a.txt" first)" "$(write_call "$HOST/out/b.txt" second)")")"
  [ "$(jq -r .is_error <<<"$output")" = true ]
  [ "$(jq -r .api_error_status <<<"$output")" = 429 ]
  [[ "$(jq -r .result <<<"$output")" == "API Error: Request rejected (429) · vivary: token budget of 250000 per day would be exceeded: 200014 used or reserved, this request needs "* ]]
  # The first write took effect; the model never got to ask for the second.
  [ "$(cat "$HOST/out/a.txt")" = first ]
  [ ! -e "$HOST/out/b.txt" ]
  [ "$(wc -l <"$RECEIVED")" -eq 2 ]
  run -0 viv-log --agent "$AGENT" --cap model-complete
  [ "$(grep -c ' kind=result .* tokens=100007 ' <<<"$output")" -eq 2 ]
  [ "$(grep -c ' kind=deny cap=model-complete .* via=endpoint stage=budget exit=75 reason="token budget of 250000 per day would be exceeded: 200014 used or reserved, this request needs ' <<<"$output")" -eq 1 ]
  local reserved
  reserved=$(viv-log --agent "$AGENT" --cap model-complete --json | jq -s '[.[] | select(.kind == "call" or .kind == "deny") | .reserved]')
  [ "$(jq 'all(. > 50000 and . <= 150000)' <<<"$reserved")" = true ]
}

@test "a model outside the grant is refused in Anthropic's shape, which Claude Code reports, and never reaches the fixture" {
  local example
  example=$(man_example claude)
  [[ "$example" == *" --model claude-sonnet-4-5 "* ]]
  run -1 --separate-stderr claude "hello" --model claude-haiku-4-5
  [ "$(jq -r .api_error_status <<<"$output")" = 403 ]
  [ "$(jq -r .result <<<"$output")" = "Failed to authenticate. API Error: 403 vivary: model 'claude-haiku-4-5' is not granted (granted: claude-sonnet-*)" ]
  [ "$(wc -l <"$RECEIVED")" -eq 0 ]
  run -0 viv-log --agent "$AGENT" --cap model-complete
  [[ "$output" == *" kind=deny cap=model-complete "*" stage=authorize exit=77 reason=\"model 'claude-haiku-4-5' is not granted (granted: claude-sonnet-*)\""* ]]
  # Negative control: the model the example names gets through.
  run -0 --separate-stderr claude "hello"
  [ "$(jq -r .result <<<"$output")" = "scripted reply to: hello" ]
  [ "$(wc -l <"$RECEIVED")" -eq 1 ]
}

@test "Claude Code as configured tries no connection but its model endpoint; without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC it would" {
  # A proxy inside the jail (socat on its loopback, HTTPS_PROXY and HTTP_PROXY pointing at it,
  # the endpoint exempt) records every connection Claude Code tries elsewhere; the jail has no
  # network, so without it those attempts would only fail unseen.
  cat >"$WS/with-proxy.sh" <<'SH'
: >/workspace/proxy.log
socat -u TCP-LISTEN:3128,bind=127.0.0.1,fork,reuseaddr OPEN:/workspace/proxy.log,append &
i=0
until grep -q ':0C38 00000000:0000 0A' /proc/net/tcp; do
  i=$((i + 1))
  [ "$i" -lt 1000 ] || exit 70
  sleep 0.01
done
HTTPS_PROXY=http://127.0.0.1:3128 HTTP_PROXY=http://127.0.0.1:3128 NO_PROXY=127.0.0.1 "$@"
SH
  JAIL_WRAP="sh /workspace/with-proxy.sh"
  run -0 --separate-stderr claude "hello"
  [ "$(jq -r .result <<<"$output")" = "scripted reply to: hello" ]
  [ -e "$WS/proxy.log" ]
  [ ! -s "$WS/proxy.log" ]
  [ "$(wc -l <"$RECEIVED")" -eq 1 ]
  [ "$(viv-log --agent "$AGENT" --cap model-complete --json | jq -s '[.[] | select(.kind == "deny")] | length')" = 0 ]
  # Negative control: the same run without the variable tries Anthropic's own host (update
  # checks, telemetry), which the proxy sees.
  DROP_ENV=CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC
  run -0 --separate-stderr claude "hello"
  [ "$(jq -r .result <<<"$output")" = "scripted reply to: hello" ]
  grep -aq '^CONNECT api.anthropic.com:443 ' "$WS/proxy.log"
  [ "$(wc -l <"$RECEIVED")" -eq 2 ]
}

@test "a call held for the operator holds Claude Code's turn: approved, it takes effect; denied, Claude Code gets the reason and goes on" {
  stop_broker
  write_policy 'tokens max=10000000 per="day"' 'approval timeout="5m"'
  start_broker
  claude "$(task "$(write_call "$HOST/out/a.txt" approved)" "$(write_call "$HOST/out/b.txt" denied)")" >"$BATS_TEST_TMPDIR/answer.json" 2>"$BATS_TEST_TMPDIR/claude.err" &
  CLAUDE_PID=$!
  local id
  until_pending 1
  [ ! -e "$HOST/out/a.txt" ]
  id=$(viv approvals --json | jq -r .id)
  viv approve "$id"
  until_pending 1
  [ "$(cat "$HOST/out/a.txt")" = approved ]
  id=$(viv approvals --json | jq -r .id)
  viv deny "$id" --reason 'not this one'
  wait "$CLAUDE_PID"
  CLAUDE_PID=""
  [ "$(jq -r .is_error "$BATS_TEST_TMPDIR/answer.json")" = false ]
  local result
  result=$(jq -r .result "$BATS_TEST_TMPDIR/answer.json")
  [[ "$result" == "ok: {\"path\":\"$HOST/out/a.txt\",\"bytes_written\":8}
error: fs-file-write: "*"not this one"* ]]
  [ ! -e "$HOST/out/b.txt" ]
  run -0 viv-log --agent "$AGENT" --cap fs-file-write
  [[ "$output" == *" kind=approval cap=fs-file-write "*" decision=approve "* ]]
  [[ "$output" == *" kind=approval cap=fs-file-write "*" decision=deny "* ]]
}
