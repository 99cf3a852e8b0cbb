#!/usr/bin/env bats
# Codex CLI (@openai/codex from the npm registry, pinned in test/agents/codex and installed there
# by scripts/setup.sh) as a real agent in a vivary jail: `codex exec`, configured by the
# config.toml that viv-mcp(1) gives (CODEX_HOME is the workspace's .codex): its model provider is
# the jail's OPENAI_BASE_URL (Responses API, streamed), its MCP server viv-mcp, its own sandbox
# off (the jail is the sandbox), no approvals, no update check, no telemetry. The model is the
# loopback OpenAI server of test/fake-openai.ts following the plans of test/scripts-codex.ts: a
# tool call the grant allows, one it denies, then a summary. A random canary is the vault's key:
# it must reach that server and nothing of the jail.
#
# The model Codex asks for is one it has no metadata for: it then offers the bridge's tools
# directly (a tool namespace), where for models it knows it may put them behind its tool search,
# which the scripted model does not speak.
#
# Scripts passed to `sh -c` inside the jail are single-quoted on purpose.
# shellcheck disable=SC2016,SC2154

load helpers

AGENT=cdx-agent
MODEL=gpt-4o-codex
CODEX_PKG="$VIV_ROOT/test/agents/codex"

setup_file() {
  local d="$BATS_FILE_TMPDIR"
  while [ "$d" != / ] && [ "$d" != /tmp ]; do chmod o+x "$d"; d=$(dirname "$d"); done
  local want have
  want=$(jq -r '.dependencies["@openai/codex"]' "$CODEX_PKG/package.json")
  have=$(jq -r .version "$CODEX_PKG/node_modules/@openai/codex/package.json" 2>/dev/null || true)
  if [ "$have" != "$want" ]; then
    echo "Codex CLI $want is not installed in $CODEX_PKG (found '${have:-none}'): run scripts/setup.sh" >&2
    return 1
  fi
  # The install, linked (or copied, across file systems) into a workspace the agent's uid owns;
  # its files stay root's, read-only to the agent. The launcher finds its native binary by
  # resolving the platform package, so the tree keeps its node_modules name.
  WS="$BATS_FILE_TMPDIR/ws"
  mkdir -p "$WS/codex"
  cp -al "$CODEX_PKG/node_modules" "$WS/codex/" 2>/dev/null || cp -a "$CODEX_PKG/node_modules" "$WS/codex/"
  uid=$("$VIV_ROOT/node_modules/.bin/bun" -e "import { agentUid } from '$VIV_ROOT/policy/load.ts'; console.log(agentUid('$AGENT'))")
  chown "$uid:$uid" "$WS"
  chmod 700 "$WS"
  export WS uid
}

setup() {
  viv_setup
  KEY="canary-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export VIVARY_VAULT_KEY="$BATS_TEST_TMPDIR/keys/vault.key"
  printf '%s' "$KEY" >"$BATS_TEST_TMPDIR/key"
  RECEIVED="$BATS_TEST_TMPDIR/received.ndjson"
  : >"$RECEIVED"
  "$VIV_ROOT/node_modules/.bin/bun" "$VIV_ROOT/test/scripts-codex.ts" --key-file "$BATS_TEST_TMPDIR/key" --log "$RECEIVED" \
    >"$BATS_TEST_TMPDIR/model.url" 2>"$BATS_TEST_TMPDIR/model.err" &
  MODEL_PID=$!
  wait_for test -s "$BATS_TEST_TMPDIR/model.url"
  MODEL_URL=$(head -n 1 "$BATS_TEST_TMPDIR/model.url")
  # What the agent may write (out/ of its workspace), and a place beside it that it may not.
  rm -rf "$WS/out" "$WS/private"
  install -d -o "$uid" -g "$uid" "$WS/out" "$WS/private"
  write_policy 'tokens max=10000000 per="day"'
  printf '%s\n' "$KEY" | viv secret set openai-key >/dev/null
  start_broker
  fresh_codex_home
  # The plan of the scripted model: a write the grant allows, then one it does not.
  PLAN=$(printf 'call fs-file-write {"path":"%s","content":"hello from codex"}\ncall fs-file-write {"path":"%s","content":"nope"}' "$WS/out/report.md" "$WS/private/x.md")
  DENIED="fs-file-write: cannot write '$WS/private/x.md': outside granted path '$WS/out'"
  export KEY RECEIVED MODEL_URL
}

teardown() {
  stop_broker
  kill "${MODEL_PID:-}" 2>/dev/null || true
}

# write_policy BUDGET_NODE: the provider, the agent's model grant and its fs-file-write grant.
write_policy() {
  cat >"$POLICY" <<KDL
provider "gpt" {
    kind "openai"
    url "$MODEL_URL"
    credential "openai-key"
}
agent "$AGENT" {
    workspace "$WS"
    grant "model-complete" {
        provider "gpt"
        model "gpt-4o*"
        $1
    }
    grant "fs-file-write" {
        path "$WS/out"
    }
}
KDL
}

# codex_config: the config.toml of viv-mcp(1) (the example that configures [mcp_servers.vivary]), as it reads.
codex_config() {
  python3 - "$VIV_ROOT/man/viv-mcp.1" <<'PY'
import re, sys
blocks = re.findall(r"^\.EX\n(.*?)^\.EE$", open(sys.argv[1]).read(), re.S | re.M)
text = next(b for b in blocks if "[model_providers.vivary]" in b)
for roff, plain in (("\\-", "-"), ("\\(aq", "'"), ("\\(dq", '"'), ("\\e", "\\"), ("\\&", "")):
    text = text.replace(roff, plain)
sys.stdout.write(text)
PY
}

# fresh_codex_home: an empty ~/.codex in the workspace (HOME in the jail) holding viv-mcp(1)'s config.toml.
fresh_codex_home() {
  rm -rf "$WS/.codex"
  install -d -o "$uid" -g "$uid" -m 700 "$WS/.codex"
  codex_config >"$WS/.codex/config.toml"
  chown "$uid:$uid" "$WS/.codex/config.toml"
}

# codex PROMPT [ARG...]: `codex exec` inside the agent's jail, its events as JSON lines on stdout.
# --strict-config: every key of the config file must be one this Codex knows.
codex() {
  local prompt=$1
  shift
  viv run --agent "$AGENT" -- /workspace/codex/node_modules/.bin/codex exec --strict-config --skip-git-repo-check --json -m "$MODEL" "$@" "$prompt" </dev/null
}

# events JQ: the Codex events in $output that JQ selects, one compact JSON value a line.
events() {
  jq -c "$1" <<<"$output"
}

@test "the config of viv-mcp(1) points Codex at the jail's endpoint, and its installed version is the pinned one" {
  run -0 viv run --agent "$AGENT" -- printenv OPENAI_BASE_URL OPENAI_API_KEY
  [ "${lines[0]}" = "$(codex_config | python3 -c 'import sys, tomllib; print(tomllib.loads(sys.stdin.read())["model_providers"]["vivary"]["base_url"])')" ]
  [ "${lines[1]}" = vivary-injects-the-key ]
  run -0 viv run --agent "$AGENT" -- /workspace/codex/node_modules/.bin/codex --version
  [ "$output" = "codex-cli $(jq -r '.dependencies["@openai/codex"]' "$CODEX_PKG/package.json")" ]
}

@test "Codex writes a granted file through viv-mcp, is denied another and goes on, over the governed and streamed Responses API" {
  run -0 --separate-stderr codex "$PLAN"
  # Codex's own account: two MCP calls, the second failed with the broker's diagnostic, then its answer.
  [ "$(events 'select(.type == "item.completed" and .item.type == "mcp_tool_call") | .item | [.server, .tool, .status]')" = "$(printf '%s\n' '["vivary","fs-file-write","completed"]' '["vivary","fs-file-write","failed"]')" ]
  [ "$(events 'select(.type == "item.completed" and .item.type == "mcp_tool_call") | .item.result.content[0].text' | jq -rs '.[0]')" = "{\"path\":\"$WS/out/report.md\",\"bytes_written\":16}" ]
  [ "$(events 'select(.type == "item.completed" and .item.type == "mcp_tool_call") | .item.result.content[0].text' | jq -rs '.[1]')" = "$DENIED" ]
  answer=$(events 'select(.type == "item.completed" and .item.type == "agent_message") | .item.text' | jq -r .)
  [[ "$answer" == "done: "*"bytes_written"*" | "*"$DENIED" ]]
  # The host: the granted write happened, the denied one did not.
  [ "$(cat "$WS/out/report.md")" = "hello from codex" ]
  [ ! -e "$WS/private/x.md" ]
  # The broker decided both calls, on the one connection of Codex's MCP session.
  run -0 viv-log --agent "$AGENT" --cap fs-file-write
  [ "${#lines[@]}" -eq 3 ]
  [[ "${lines[0]}" == *" kind=call cap=fs-file-write conn="*" args.path=$WS/out/report.md args.content=\"hello from codex\" "* ]]
  [[ "${lines[1]}" == *" kind=result cap=fs-file-write conn="*" exit=0" ]]
  [[ "${lines[2]}" == *" kind=deny cap=fs-file-write conn="*" stage=authorize exit=77 reason=\"cannot write '$WS/private/x.md': outside granted path '$WS/out'\" "* ]]
  [ "$(viv-log --agent "$AGENT" --cap fs-file-write --json | jq -s '[.[].conn] | unique | length')" -eq 1 ]
  # Every model request went through the endpoint, streamed, and is recorded with its tokens; Codex
  # asked the endpoint for nothing else (no model list, no WebSocket upgrade: no deny record).
  run -0 viv-log --agent "$AGENT" --cap model-complete
  echo "$output"
  [ "${#lines[@]}" -eq 6 ]
  [ "$(grep -c " kind=call cap=model-complete .* via=endpoint provider=gpt credential=openai-key api=/v1/responses model=$MODEL stream=true " <<<"$output")" -eq 3 ]
  [ "$(grep -c ' kind=result cap=model-complete .* via=endpoint exit=0 status=200 input_tokens=12 output_tokens=7 tokens=19 ' <<<"$output")" -eq 3 ]
  [[ "$output" == *" reply=\"[tool mcp__vivary.fs_file_write] {\\\"path\\\":\\\"$WS/out/report.md\\\",\\\"content\\\":\\\"hello from codex\\\"}\""* ]]
  # The loopback server: three streamed Responses requests with the vault's key, the bridge's tools
  # offered as the namespace mcp__vivary, the denial handed back to the model as the call's output.
  [ "$(jq -c '[.path, .stream, .key_ok, .placeholder_seen]' "$RECEIVED" | sort | uniq -c | sed 's/^ *//')" = '3 ["/v1/responses",true,true,false]' ]
  [ "$(jq -c 'first(.body.tools[] | select(.type == "namespace" and .name == "mcp__vivary")) | [.tools[].name]' "$RECEIVED" | sort -u)" = '["fs_file_write","model_complete"]' ]
  [[ "$(jq -r 'select(.body.input[-1].type == "function_call_output") | .body.input[-1].output | map(.text) | join("")' "$RECEIVED" | tail -n 1)" == *"$DENIED" ]]
}

@test "the key reaches the loopback server and nothing of the jail: not its environment, CODEX_HOME, the workspace, /tmp, nor the log" {
  local nonce
  nonce="nonce-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  run -0 --separate-stderr codex "$PLAN"$'\n'"# $nonce"
  [ "$(cat "$WS/out/report.md")" = "hello from codex" ]
  [ "$(jq -c .key_ok "$RECEIVED" | sort -u)" = true ]
  # What a jail's processes see.
  run -0 viv run --agent "$AGENT" -- sh -c 'env; cat /proc/*/environ /proc/*/cmdline 2>/dev/null | tr "\0" "\n"'
  [[ "$output" == *"OPENAI_API_KEY=vivary-injects-the-key"* ]]
  [[ "$output" != *"$KEY"* ]]
  # Every file the jail can reach that is not the host's /usr: the workspace (CODEX_HOME, Codex's
  # sessions, logs and databases included), /tmp, /run, /etc, /dev/shm.
  run -0 viv run --agent "$AGENT" -- sh -c 'grep -rlaF -e "$0" /workspace /tmp /run /etc /dev/shm 2>/dev/null; true' "$KEY"
  [ "$output" = "" ]
  # Negative control: the same search finds the prompt's nonce where Codex keeps its sessions.
  run -0 viv run --agent "$AGENT" -- sh -c 'grep -rlaF -e "$0" /workspace /tmp /run /etc /dev/shm 2>/dev/null; true' "$nonce"
  [[ "$output" == *"/workspace/.codex/sessions/"* ]]
  run -0 viv-log
  [[ "$output" != *"$KEY"* ]]
  run -0 viv-log --json
  [[ "$output" != *"$KEY"* ]]
  run ! grep -qaF "$KEY" "$STATE"/audit.db "$STATE"/audit.db-wal
}

@test "negative control: with another key in the vault the loopback server refuses Codex, and key_ok says so" {
  printf 'not-the-key\n' | viv secret set openai-key >/dev/null
  # Codex would try a refused stream five more times; once shows it.
  run --separate-stderr codex "$PLAN" -c model_providers.vivary.stream_max_retries=0
  [ "$status" -ne 0 ]
  [ "$(jq -c '[.path, .key_ok]' "$RECEIVED")" = '["/v1/responses",false]' ]
  [[ "$(events 'select(.type == "turn.failed" or .type == "error") | .message // .error.message' | tail -n 1)" == *"Incorrect API key provided."* ]]
  [ ! -e "$WS/out/report.md" ]
  run -0 viv-log --cap model-complete
  [[ "$output" == *" kind=result cap=model-complete "*" exit=69 status=401 "* ]]
}

@test "a model outside the grant is refused in OpenAI's shape, which Codex shows, and never reaches the model" {
  # Codex tries a refused stream five more times (it reads no x-should-retry), each refused and recorded; once shows it.
  MODEL=o3 run --separate-stderr codex "$PLAN" -c model_providers.vivary.stream_max_retries=0
  [ "$status" -ne 0 ]
  [[ "$(events 'select(.type == "turn.failed") | .error.message' | jq -r .)" == *"403 Forbidden: vivary: model 'o3' is not granted (granted: gpt-4o*)"* ]]
  [ "$(wc -l <"$RECEIVED")" -eq 0 ]
  [ ! -e "$WS/out/report.md" ]
  run -0 viv-log --cap model-complete
  [ "${#lines[@]}" -eq 1 ]
  [[ "${lines[0]}" == *" kind=deny cap=model-complete "*" via=endpoint stage=authorize exit=77 reason=\"model 'o3' is not granted (granted: gpt-4o*)\" api=/v1/responses provider=gpt model=o3" ]]
}

@test "a token budget stops Codex's run: the request that would cross it is refused in OpenAI's shape, recorded (75), and never reaches the model" {
  # The reservations of a run's first two requests (each its output bound plus its size), measured
  # under a budget that holds them; then, afresh, a ceiling that holds the first but not the second.
  run -0 --separate-stderr codex "$PLAN"
  local r1 r2
  r1=$(viv-log --cap model-complete --json | jq -s '[.[] | select(.kind == "call") | .reserved][0]')
  r2=$(viv-log --cap model-complete --json | jq -s '[.[] | select(.kind == "call") | .reserved][1]')
  # The first settles at 19 tokens; the gap leaves room for a run's few bytes of difference.
  [ $((r2 + 19 - r1)) -gt 200 ]
  local max=$((r1 + (r2 + 19 - r1) / 2))
  stop_broker
  rm -rf "$STATE" "$WS/out/report.md"
  : >"$RECEIVED"
  fresh_codex_home
  write_policy "tokens max=$max per=\"day\""
  printf '%s\n' "$KEY" | viv secret set openai-key >/dev/null
  start_broker
  run --separate-stderr codex "$PLAN"
  [ "$status" -ne 0 ]
  # The first request went through, and so did the tool call it asked for.
  [ "$(wc -l <"$RECEIVED")" -eq 1 ]
  [ "$(cat "$WS/out/report.md")" = "hello from codex" ]
  # Codex reads OpenAI's insufficient_quota as the end of the run, without retrying.
  [ "$(events 'select(.type == "turn.failed") | .error.message' | jq -r .)" = "Quota exceeded. Check your plan and billing details." ]
  run -0 viv-log --cap model-complete
  [ "$(grep -c ' kind=result cap=model-complete ' <<<"$output")" -eq 1 ]
  [ "$(grep -c ' kind=deny cap=model-complete ' <<<"$output")" -eq 1 ]
  [[ "$output" == *" kind=deny cap=model-complete "*" via=endpoint stage=budget exit=75 reason=\"token budget of $max per day would be exceeded: 19 used or reserved, this request needs "* ]]
  run -0 viv-log --cap model-complete --json
  # Its raw bytes: the request, then the refusal Codex got, in OpenAI's error shape.
  [ "$(jq -c 'select(.kind == "deny") | .body | "{\"error\":" + (split("{\"error\":") | last) | fromjson | .error | [.type, .code]' <<<"$output")" = '["insufficient_quota","token_budget_exhausted"]' ]
  # The denied call never ran: nothing reached fs-file-write after the first call.
  [ "$(viv-log --cap fs-file-write --json | jq -s 'map(.kind)' | jq -c .)" = '["call","result"]' ]
}

@test "Codex's own sandbox cannot nest in the jail; with it off, Codex's shell commands run as the jail's user under its seccomp filter" {
  local cmd='{"cmd":"id -u; grep ^Seccomp: /proc/self/status; echo ran > /workspace/out/shell.txt"}'
  run -0 --separate-stderr codex "call exec_command $cmd" -s workspace-write
  [[ "$(events 'select(.type == "item.completed" and .item.type == "command_execution") | .item.aggregated_output' | jq -r .)" == "bwrap: No permissions to create new namespace"* ]]
  [ ! -e "$WS/out/shell.txt" ]
  # The configured danger-full-access: the command runs, inside the jail.
  run -0 --separate-stderr codex "call exec_command $cmd"
  [ "$(events 'select(.type == "item.completed" and .item.type == "command_execution") | [.item.exit_code, .item.aggregated_output]')" = "[0,\"$(viv run --agent "$AGENT" -- id -u)\\nSeccomp:\\t2\\n\"]" ]
  [ "$(cat "$WS/out/shell.txt")" = ran ]
}
