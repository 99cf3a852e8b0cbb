#!/usr/bin/env bats
# Governed model access through a real broker and a real jail: the official SDKs
# (@anthropic-ai/sdk, openai from the npm registry) run under node inside the jail, configured only
# by the environment viv run sets, against the jail's model endpoint (viv-model-relay on the
# jail's loopback, the agent's model socket, the broker), which forwards to loopback servers that
# speak Anthropic's and OpenAI's wire formats (test/fake-anthropic.ts, test/fake-openai.ts) and
# check the injected key. A random canary is that key: it must reach those servers and nothing
# else, not the jail's environment, files or /proc, not viv-log, not audit.db.
#
# Scripts passed to `sh -c` inside the jail are single-quoted on purpose.
# shellcheck disable=SC2016,SC2154

load helpers

AGENT=mdl-sdk

setup_file() {
  # The SDKs and what they require, copied once into a workspace the agent's uid owns.
  local d="$BATS_FILE_TMPDIR"
  while [ "$d" != / ] && [ "$d" != /tmp ]; do chmod o+x "$d"; d=$(dirname "$d"); done
  WS="$BATS_FILE_TMPDIR/ws"
  mkdir -p "$WS/node_modules"
  (cd "$VIV_ROOT" && node -e '
    const fs = require("fs"), path = require("path");
    const seen = new Set(), todo = ["@anthropic-ai/sdk", "openai"];
    while (todo.length) {
      const n = todo.pop();
      if (seen.has(n)) continue;
      const dir = path.join("node_modules", n);
      if (!fs.existsSync(dir)) continue;
      seen.add(n);
      const pj = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
      todo.push(...Object.keys(pj.dependencies ?? {}));
    }
    console.log([...seen].join("\n"));') | while read -r pkg; do
    mkdir -p "$WS/node_modules/$(dirname "$pkg")"
    cp -a "$VIV_ROOT/node_modules/$pkg" "$WS/node_modules/$pkg"
  done
  cp "$VIV_ROOT/test/model-sdk-client.mjs" "$WS/client.mjs"
  uid=$("$VIV_ROOT/node_modules/.bin/bun" -e "import { agentUid } from '$VIV_ROOT/policy/load.ts'; console.log(agentUid('$AGENT'))")
  chown -R "$uid:$uid" "$WS"
  chmod 700 "$WS"
  export WS
}

setup() {
  viv_setup
  KEY="canary-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export VIVARY_VAULT_KEY="$BATS_TEST_TMPDIR/keys/vault.key"
  printf '%s' "$KEY" >"$BATS_TEST_TMPDIR/key"
  RECEIVED="$BATS_TEST_TMPDIR/received.ndjson"
  : >"$RECEIVED"
  for api in anthropic openai; do
    "$VIV_ROOT/node_modules/.bin/bun" "$VIV_ROOT/test/fake-$api.ts" --key-file "$BATS_TEST_TMPDIR/key" --log "$RECEIVED" \
      >"$BATS_TEST_TMPDIR/$api.url" 2>"$BATS_TEST_TMPDIR/$api.err" &
    eval "FAKE_${api}_PID=\$!"
    wait_for test -s "$BATS_TEST_TMPDIR/$api.url"
  done
  ANTHROPIC_URL=$(head -n 1 "$BATS_TEST_TMPDIR/anthropic.url")
  OPENAI_URL=$(head -n 1 "$BATS_TEST_TMPDIR/openai.url")
  write_policy 'tokens max=1000000 per="day"'
  printf '%s\n' "$KEY" | viv secret set anthropic-key
  printf '%s\n' "$KEY" | viv secret set openai-key
  start_broker
  export KEY RECEIVED
}

teardown() {
  stop_broker
  kill "${FAKE_anthropic_PID:-}" "${FAKE_openai_PID:-}" 2>/dev/null || true
}

# write_policy BUDGET_NODE: the providers and the agent's model grant.
write_policy() {
  cat >"$POLICY" <<KDL
provider "claude" {
    kind "anthropic"
    url "$ANTHROPIC_URL"
    credential "anthropic-key"
}
provider "gpt" {
    kind "openai"
    url "$OPENAI_URL"
    credential "openai-key"
}
// A server that speaks Chat Completions only, as vLLM, llama.cpp's server or Ollama do.
provider "local" {
    kind "openai-compatible"
    url "$OPENAI_URL"
    credential "openai-key"
}
agent "$AGENT" {
    workspace "$WS"
    grant "model-complete" {
        provider "claude"
        provider "gpt"
        provider "local"
        model "claude-sonnet-*"
        model "gpt-4o*"
        model "llama-*"
        $1
    }
}
KDL
}

# sdk CASE [N]: the SDK client script inside the agent's jail.
sdk() {
  viv run --agent "$AGENT" -- node /workspace/client.mjs "$@"
}

received() {
  jq -c "$1" "$RECEIVED"
}

@test "the Anthropic SDK gets a message through the jail's endpoint, with the vault's key injected and the exchange recorded" {
  run -0 --separate-stderr sdk anthropic
  [ "$output" = '{"text":"scripted reply to: hello","stop":"end_turn","usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":7}}' ]
  [ "$(received '[.path, .key_ok, .placeholder_seen]')" = '["/v1/messages",true,false]' ]
  # The SDK's own anthropic-version passes through (the broker's default, 2023-06-01, is for clients that send none).
  sdk_version=$(grep -o "anthropic-version': '[0-9-]*" "$VIV_ROOT/node_modules/@anthropic-ai/sdk/client.js" | head -n 1 | sed "s/.*'//")
  [ -n "$sdk_version" ]
  [ "$(received '.headers["anthropic-version"]')" = "\"$sdk_version\"" ]
  run -0 viv-log --cap model-complete
  [[ "${lines[0]}" == *" kind=call cap=model-complete "*"via=endpoint provider=claude credential=anthropic-key api=/v1/messages model=claude-sonnet-4-5 stream=false max_tokens=200 reserved="* ]]
  [[ "${lines[0]}" == *" prompt=hello" ]]
  [[ "${lines[1]}" == *" kind=result cap=model-complete "*"exit=0 status=200 input_tokens=12 output_tokens=7 tokens=19 "*' reply="scripted reply to: hello"' ]]
  run -0 viv-log --cap model-complete --json
  [ "$(jq -r 'select(.kind=="call") | .body | fromjson | .messages[0].content' <<<"$output")" = "hello" ]
  [ "$(jq -r 'select(.kind=="result") | .body | fromjson | .content[0].text' <<<"$output")" = "scripted reply to: hello" ]
}

@test "the Anthropic SDK streams a message event by event, and the usage of the stream is settled" {
  run -0 --separate-stderr sdk anthropic-stream
  [ "$output" = '{"deltas":["scripted reply t","o: stream please"],"text":"scripted reply to: stream please","usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":7}}' ]
  run -0 viv-log --cap model-complete
  [[ "$output" == *"stream=true"* ]]
  [[ "$output" == *"kind=result cap=model-complete "*"tokens=19 "*'reply="scripted reply to: stream please"'* ]]
  run -0 viv-log --cap model-complete --json
  [[ "$(jq -r 'select(.kind=="result") | .body' <<<"$output")" == "event: message_start"*"event: message_stop"* ]]
}

@test "a model outside the grant is refused with Anthropic's permission_error, which the SDK reports, and never reaches the provider" {
  run -0 --separate-stderr sdk anthropic-denied
  [ "$output" = '{"error":"PermissionDeniedError","status":403,"type":"permission_error","message":"vivary: model '"'"'claude-opus-4'"'"' is not granted (granted: claude-sonnet-*, gpt-4o*, llama-*)"}' ]
  [ "$(wc -l <"$RECEIVED")" -eq 0 ]
  run -0 viv-log --cap model-complete
  [[ "$output" == *"kind=deny cap=model-complete "*"stage=authorize exit=77 "* ]]
}

@test "the OpenAI SDK completes a chat, whole and streamed, and is refused a model outside the grant in OpenAI's shape" {
  run -0 --separate-stderr sdk openai-chat
  [ "$output" = '{"text":"scripted reply to: hello","finish":"stop","usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}' ]
  run -0 --separate-stderr sdk openai-chat-stream
  [ "$output" = '{"deltas":["scripted reply t","o: stream please"],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}' ]
  run -0 --separate-stderr sdk openai-denied
  [ "$output" = '{"error":"PermissionDeniedError","status":403,"type":"permission_error","message":"vivary: model '"'"'o3'"'"' is not granted (granted: claude-sonnet-*, gpt-4o*, llama-*)"}' ]
  [ "$(received 'select(.api=="openai") | [.path, .key_ok, .placeholder_seen]' | sort -u)" = '["/v1/chat/completions",true,false]' ]
}

@test "the OpenAI SDK reaches an openai-compatible provider for Chat Completions, whole and streamed, and nothing else of the API" {
  run -0 --separate-stderr sdk compatible-chat
  [ "$output" = '{"text":"scripted reply to: hello","deltas":["scripted reply t","o: stream please"],"responses":404}' ]
  # The Responses API is not forwarded for this kind: two requests reached the server, not three.
  [ "$(received 'select(.model=="llama-3.1-8b") | [.path, .key_ok, .stream]' | sort | uniq -c | awk '{print $1, $2}' | tr '\n' ' ')" = '1 ["/v1/chat/completions",true,false] 1 ["/v1/chat/completions",true,true] ' ]
  run -0 viv-log --cap model-complete
  [ "$(grep -c 'kind=call cap=model-complete .*provider=local ' <<<"$output")" -eq 2 ]
}

@test "the OpenAI SDK uses the Responses API, whole and streamed" {
  run -0 --separate-stderr sdk openai-responses
  [ "$output" = '{"text":"scripted reply to: hello","usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":0},"output_tokens":7,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":19}}' ]
  run -0 --separate-stderr sdk openai-responses-stream
  [ "$output" = '{"text":"scripted reply to: stream please","last":"response.completed","count":10}' ]
  run -0 viv-log --cap model-complete
  [ "$(grep -c 'kind=result cap=model-complete .*tokens=19 ' <<<"$output")" -eq 2 ]
}

@test "tool calls and tool results go through the endpoint in both SDKs, whole and streamed, and the log names the calls" {
  run -0 --separate-stderr sdk anthropic-tools
  [ "$output" = '{"stop":"tool_use","call":["fs-file-write",{"path":"/srv/a.md"}],"streamed":[["tool_use","fs-file-write",{"path":"/srv/a.md"}]],"answer":"tool said: written"}' ]
  run -0 --separate-stderr sdk openai-tools
  [ "$output" = '{"finish":"tool_calls","call":["fs-file-write",{"path":"/srv/a.md"}],"streamed":["fs-file-write",{"path":"/srv/a.md"}],"answer":"tool said: written","responses":["fs-file-write",{"path":"/srv/a.md"},"tool said: written"]}' ]
  run -0 viv-log --cap model-complete
  [ "$(grep -c 'kind=result .*reply="\[tool fs-file-write\] {\\"path\\":\\"/srv/a.md\\"}"' <<<"$output")" -eq 5 ]
  [ "$(grep -c 'kind=result .*reply="tool said: written"' <<<"$output")" -eq 3 ]
}

@test "concurrent requests never overrun the token ceiling, and the SDK reports the refusal without retrying" {
  stop_broker
  write_policy 'tokens max=4000 per="day"'
  start_broker
  run -0 --separate-stderr sdk anthropic-many 12
  ok=$(jq .ok <<<"$output")
  refused=$(jq .refused <<<"$output")
  [ "$(jq -c .other <<<"$output")" = "[]" ]
  [ "$((ok + refused))" -eq 12 ]
  [ "$ok" -ge 1 ]
  [ "$refused" -ge 1 ]
  [ "$(jq -c .types <<<"$output")" = '["rate_limit_error"]' ]
  # Each request reserves 500 output tokens plus its size in bytes: no more than 4000 at once.
  [ "$(wc -l <"$RECEIVED")" -eq "$ok" ]
  reserved=$(viv-log --cap model-complete --json | jq -s '[.[] | select(.kind=="call") | .reserved] | add')
  [ "$reserved" -le 4000 ]
  run -0 viv-log --cap model-complete
  [ "$(grep -c 'kind=deny cap=model-complete .*stage=budget exit=75 ' <<<"$output")" -eq "$refused" ]
}

@test "a budget spent before a restart stays spent after it" {
  stop_broker
  write_policy 'tokens max=300 per="day"'
  start_broker
  # The first request reserves 200 plus its size and settles at 19; a second needs as much again.
  run -0 --separate-stderr sdk anthropic
  [ "$(jq -r .text <<<"$output")" = "scripted reply to: hello" ]
  run -1 --separate-stderr sdk anthropic
  [[ "$stderr" == *"token budget of 300 per day would be exceeded: 19 used or reserved"* ]]
  stop_broker
  start_broker
  run -1 --separate-stderr sdk anthropic
  [[ "$stderr" == *"token budget of 300 per day would be exceeded: 19 used or reserved"* ]]
  [ "$(wc -l <"$RECEIVED")" -eq 1 ]
}

@test "the key is nowhere in the jail (environment, files, /proc) nor in viv-log or audit.db, and a key the provider echoes is scrubbed" {
  run -0 viv run --agent "$AGENT" -- sh -c 'env; cat /proc/*/environ /proc/*/cmdline 2>/dev/null | tr "\0" "\n"; grep -rs . /run/vivary/capabilities.json /workspace/client.mjs /tmp 2>/dev/null; true'
  [[ "$output" == *"ANTHROPIC_BASE_URL=http://127.0.0.1:4180/claude"* ]]
  [[ "$output" == *"OPENAI_BASE_URL=http://127.0.0.1:4180/gpt/v1"* ]]
  [[ "$output" != *"$KEY"* ]]
  run -0 viv run --agent "$AGENT" -- sh -c 'grep -rl "$0" /run /workspace /tmp /etc /dev/shm 2>/dev/null; true' "$KEY"
  [ "$output" = "" ]
  run -0 viv run --agent "$AGENT" -- node --input-type=module -e '
    const r = await fetch(process.env.ANTHROPIC_BASE_URL + "/v1/messages", { method: "POST", headers: { "content-type": "application/json", "x-api-key": "stolen?" }, body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 50, messages: [{ role: "user", content: "echo-key" }] }) });
    console.log(r.status, (await r.json()).content[0].text);'
  [[ "$output" == "200 the key I was sent is [secret scrubbed]" ]]
  run -0 viv-log
  [[ "$output" != *"$KEY"* ]]
  run -0 viv-log --json
  [[ "$output" != *"$KEY"* ]]
  run ! grep -qa "$KEY" "$STATE"/audit.db "$STATE"/audit.db-wal
  [ "$(received .key_ok | sort -u)" = "true" ]
}

@test "model-complete from a shell agent goes through the same grant and budget" {
  run -0 --separate-stderr viv run --agent "$AGENT" -- model-complete --model claude-sonnet-4-5 --prompt 'hello' --max-tokens 64
  [ "$output" = '{"provider":"claude","model":"claude-sonnet-4-5","text":"scripted reply to: hello","stop_reason":"end_turn","input_tokens":12,"output_tokens":7}' ]
  run -77 --separate-stderr viv run --agent "$AGENT" -- model-complete --model claude-opus-4 --prompt 'hello'
  [ "$stderr" = "model-complete: model 'claude-opus-4' is not granted" ]
  run -0 viv-log --cap model-complete
  [[ "$output" == *"kind=result cap=model-complete "*"exit=0 "*"reserved=69 input_tokens=12 output_tokens=7 tokens=19"* ]]
}

@test "every example in model-complete(1) runs in a jail and prints what the page says" {
  # The page's model answers its question; here a loopback model planned to answer it does.
  stop_broker
  kill "$FAKE_anthropic_PID"
  printf '[{"text":"3"}]\n' >"$BATS_TEST_TMPDIR/plan.json"
  rm "$BATS_TEST_TMPDIR/anthropic.url"
  "$VIV_ROOT/node_modules/.bin/bun" "$VIV_ROOT/test/fake-anthropic.ts" --key-file "$BATS_TEST_TMPDIR/key" --log "$RECEIVED" \
    --plan "$BATS_TEST_TMPDIR/plan.json" >"$BATS_TEST_TMPDIR/anthropic.url" 2>"$BATS_TEST_TMPDIR/anthropic.err" &
  FAKE_anthropic_PID=$!
  wait_for test -s "$BATS_TEST_TMPDIR/anthropic.url"
  ANTHROPIC_URL=$(head -n 1 "$BATS_TEST_TMPDIR/anthropic.url")
  write_policy 'tokens max=1000000 per="day"'
  start_broker
  check_man_examples model-complete 2
  # The refused model was never asked.
  [ "$(received '[.model, .body.max_tokens]')" = '["claude-sonnet-4-5",16]' ]
}

@test "behind the relay the command's exit status and signals come through; an agent without a model grant gets no endpoint" {
  run -3 viv run --agent "$AGENT" -- sh -c 'exit 3'
  run -137 viv run --agent "$AGENT" -- sh -c 'kill -9 $$'
  run -0 --separate-stderr viv run --agent "$AGENT" -- sh -c 'cat /proc/1/cmdline /proc/2/cmdline | tr "\0" " "'
  [[ "$output" == *"/run/vivary/libexec/viv-model-relay 4180 /run/vivary/model.sock -- sh -c"* ]]
  stop_broker
  cat >"$POLICY" <<KDL
agent "mdl-plain" {
    grant "fs-file-write" {
        path "$HOST"
    }
}
KDL
  start_broker
  run -0 --separate-stderr viv run --agent mdl-plain -- sh -c 'env | grep -c -e _BASE_URL -e _API_KEY; ls /run/vivary; node -e "fetch(\"http://127.0.0.1:4180/\").then(() => console.log(\"open\"), () => console.log(\"closed\"))"'
  [ "${lines[0]}" = "0" ]
  [[ "$output" != *"model.sock"* ]]
  [ "${lines[-1]}" = "closed" ]
}

@test "the model socket is the agent's alone: another uid cannot connect to it" {
  sock="$STATE/agents/$AGENT/run/model.sock"
  [ -S "$sock" ]
  [ "$(stat -c '%a %u' "$sock")" = "600 $(agent_uid "$AGENT")" ]
  # A negative control first: the agent's own uid gets an answer; then another unprivileged uid is refused.
  run -0 setpriv --reuid="$(agent_uid "$AGENT")" --regid="$(agent_uid "$AGENT")" --clear-groups curl -s --unix-socket "$sock" -o /dev/null -w '%{http_code}' http://localhost/claude/v1/models
  [ "$output" = "404" ]
  run ! setpriv --reuid=65534 --regid=65534 --clear-groups curl -s --unix-socket "$sock" http://localhost/claude/v1/messages
}
