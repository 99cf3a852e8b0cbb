#!/usr/bin/env bats
# viv secret set, list and rm, the operator's side of the credential vault, run as the built
# binary with no broker: the value comes on standard input (from a terminal, without echo, tried
# for real in tmux), is sealed at rest, never printed back, and the files are private. Calls
# through a broker that use the vault are in capabilities/messaging-message-send/.
# shellcheck disable=SC2154

load helpers

setup() {
  viv_setup
  export VIVARY_VAULT_KEY="$BATS_TEST_TMPDIR/keys/vault.key"
  CANARY="canary-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  TMUX_SOCK="viv-vault-$$-$BATS_TEST_NUMBER"
  export CANARY TMUX_SOCK
}

teardown() {
  tmux -L "$TMUX_SOCK" kill-server 2>/dev/null || true
}

# reveal ID: the value the vault holds for ID, opened the way the broker opens it.
reveal() {
  "$VIV_ROOT/node_modules/.bin/bun" -e "
    import { Vault } from '$VIV_ROOT/broker/vault.ts';
    process.stdout.write(new Vault(process.env.VIVARY_STATE, process.env.VIVARY_VAULT_KEY).get('$1').reveal());"
}

@test "viv secret set reads the value from standard input, and list shows ids and metadata only" {
  run -0 --separate-stderr viv secret set twilio-main <<<"$CANARY"
  [ "$output" = "twilio-main: created" ]
  [ "$stderr" = "" ]
  [ "$(reveal twilio-main)" = "$CANARY" ]
  local t=$'\t' when='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z'
  run -0 --separate-stderr viv secret list
  [[ "$output" =~ ^twilio-main${t}created=${when}${t}updated=${when}${t}last_used=never${t}grants=\?$ ]]
  [ "${stderr_lines[0]}" = "viv: grants not shown: $POLICY: cannot read policy: ENOENT" ]
  run -0 --separate-stderr viv secret list --json
  [ "$(jq -c '{id, last_used, grants}' <<<"$output")" = '{"id":"twilio-main","last_used":null,"grants":null}' ]
  [[ "$output" != *"$CANARY"* ]]
  run -1 grep -aqF "$CANARY" "$STATE/vault/secrets.json"
}

@test "the key, the vault directory and its files are private, and the key is outside the state directory" {
  viv secret set a-secret <<<"$CANARY"
  [ "$(stat -c %a "$VIVARY_VAULT_KEY")" = 600 ]
  [ "$(stat -c %a "$(dirname "$VIVARY_VAULT_KEY")")" = 700 ]
  [ "$(stat -c %a "$STATE/vault")" = 700 ]
  [ "$(stat -c %a "$STATE/vault/secrets.json")" = 600 ]
  [ "$(find "$STATE" -name '*.key' | wc -l)" -eq 0 ]
  VIVARY_VAULT_KEY="$STATE/vault.key" run -78 --separate-stderr viv secret set b-secret <<<"$CANARY"
  [ "$stderr" = "viv: vault key '$STATE/vault.key' is inside the state directory '$STATE'; keep it apart (VIVARY_VAULT_KEY)" ]
}

@test "a bad id, an empty value and a short value are refused with one line" {
  run -64 --separate-stderr viv secret set 'Bad Id' <<<"$CANARY"
  [ "$stderr" = "viv: secret id 'Bad Id' must match ^[a-z0-9][a-z0-9._-]{0,63}\$" ]
  run -65 --separate-stderr viv secret set empty </dev/null
  [ "$stderr" = "viv: no secret on standard input" ]
  run -65 --separate-stderr viv secret set short <<<"1234567"
  [ "$stderr" = "viv: secret 'short' is shorter than 8 bytes, too short to be scrubbed from output reliably" ]
  [ ! -e "$STATE/vault/secrets.json" ]
}

@test "setting an id again replaces its value and keeps when it was created" {
  viv secret set a-secret <<<"first-value-123"
  local created
  created=$(viv secret list --json | jq -r .created)
  run -0 viv secret set a-secret <<<"$CANARY"
  [ "$output" = "a-secret: replaced" ]
  [ "$(reveal a-secret)" = "$CANARY" ]
  [ "$(viv secret list --json | jq -r .created)" = "$created" ]
}

@test "viv secret rm removes a secret, and removing an unknown one is an error" {
  viv secret set a-secret <<<"$CANARY"
  viv secret set b-secret <<<"$CANARY-b"
  run -0 viv secret rm a-secret
  [ "$(viv secret list --json | jq -r .id)" = b-secret ]
  run -65 --separate-stderr viv secret rm a-secret
  [ "$stderr" = "viv: no secret 'a-secret' in the vault" ]
}

@test "concurrent writers all land" {
  local i pids=()
  for i in 1 2 3 4 5 6; do
    viv secret set "id-$i" <<<"value-number-$i" &
    pids+=("$!")
  done
  for i in "${pids[@]}"; do wait "$i"; done
  [ "$(viv secret list --json | jq -r .id | tr '\n' ' ')" = "id-1 id-2 id-3 id-4 id-5 id-6 " ]
  for i in 1 2 3 4 5 6; do [ "$(reveal "id-$i")" = "value-number-$i" ]; done
}

@test "from a terminal the value is read without echo" {
  tmux -L "$TMUX_SOCK" -f /dev/null new-session -d -s s -x 160 -y 10 \
    "env VIVARY_VAULT_KEY='$VIVARY_VAULT_KEY' '$VIV_ROOT/dist/bin/viv' secret set tty-secret --state '$STATE'; echo rc=\$?; read -r _"
  wait_for pane_shows "secret for 'tty-secret':"
  tmux -L "$TMUX_SOCK" send-keys -t s -l "$CANARY"
  tmux -L "$TMUX_SOCK" send-keys -t s Enter
  wait_for pane_shows "rc=0"
  run -0 tmux -L "$TMUX_SOCK" capture-pane -p -t s
  [[ "$output" == *"tty-secret: created"* ]]
  [[ "$output" != *"$CANARY"* ]]
  [ "$(reveal tty-secret)" = "$CANARY" ]
}

# pane_shows TEXT: the tmux pane of the test shows TEXT.
pane_shows() {
  [[ "$(tmux -L "$TMUX_SOCK" capture-pane -p -t s)" == *"$1"* ]]
}

@test "the examples of viv(1) for viv secret run as written" {
  local examples
  examples=$(sed -n 's/\\-/-/g; /^viv secret /p' "$VIV_ROOT/man/viv.1")
  [ "$(wc -l <<<"$examples")" -ge 3 ]
  cd "$BATS_TEST_TMPDIR"
  printf '%s\n' "$CANARY" >token.txt
  run -0 bash -euo pipefail -c "$examples"
  [[ "$output" == *"twilio-main"* ]]
  [[ "$output" != *"$CANARY"* ]]
}
