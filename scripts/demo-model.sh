#!/usr/bin/env bash
# vivary's second demo: an agent that thinks. A small agent loop (policy/examples/agent-loop.mjs)
# runs in a jail under policy/examples/agent-loop.kdl: it asks its model what to do, runs the
# capabilities the model asks for, and feeds back their results and refusals. The model is reached
# only through vivary's governed endpoint, which injects the key from the vault and counts tokens
# against the grant's ceiling. No model can be installed here, so the model is a loopback server
# that speaks Anthropic's Messages API and follows a plan (policy/examples/agent-loop.plan.json);
# with a real key and a real provider URL the same loop runs against a real model. Then the audit
# log shows the prompts, the tool calls, their results, the refusal and the tokens spent.
# shellcheck source=scripts/demo-common.bash
source "$(dirname "$0")/demo-common.bash"

# The scripted model, with a key only it and the vault know.
key="sk-demo-$(secret)"
printf '%s' "$key" >"$run/model-key"
"$bun" test/fake-anthropic.ts --key-file "$run/model-key" --plan policy/examples/agent-loop.plan.json --log "$run/model.log" >"$run/model.url" &
pids+=($!)
wait_file "$run/model.url"

echo "== viv secret set model-demo: the model's API key goes into the vault"
printf '%s\n' "$key" | viv secret set --state "$state" model-demo

policy=$state/agent-loop.kdl
sed -e "s|http://127.0.0.1:8090|$(head -n 1 "$run/model.url")|" policy/examples/agent-loop.kdl >"$policy"
mkdir -p /srv/vivary-demo/notes
rm -f /srv/vivary-demo/notes/status.md
echo "== viv policy check $policy"
viv policy check "$policy"

echo "== viv run --agent looper -- node agent-loop.mjs TASK"
status=0
viv run --agent looper --policy "$policy" --state "$state" -- node --input-type=module -e "$(cat policy/examples/agent-loop.mjs)" -- \
  "Write today's status note to /srv/vivary-demo/notes/status.md, check it, and put a copy in /etc/motd." || status=$?
echo "== the agent exited $status; the host now holds:"
find /srv/vivary-demo/notes -type f -printf '%p (%s bytes)\n' | sort
echo "== the model server saw the vault's key on $(grep -c '"key_ok":true' "$run/model.log") of $(wc -l <"$run/model.log") requests; the jail only ever held a placeholder"
echo "== viv-log --state $state --cap model-complete"
viv-log --state "$state" --cap model-complete
echo "== viv-log --state $state (the capability calls)"
viv-log --state "$state" | grep -v 'cap=model-complete'
echo "== viv-log verify"
viv-log verify --state "$state"
