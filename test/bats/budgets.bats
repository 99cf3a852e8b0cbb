#!/usr/bin/env bats
# Cumulative budgets a capability defines, through a real broker and jail: messaging-message-send's
# `messages max=N per="day"` counts messages per recipient (in E.164) against a loopback Twilio
# (test/fake-twilio.ts), whose log of received messages is the side effect counted. A burst never
# sends more than the ceiling, other recipients keep their own count, and a restart refills
# nothing. (commerce-order-create's spending limits have their own suite in its folder.)
# shellcheck disable=SC2016,SC2154

load helpers

ACCOUNT=AC0123456789abcdef0123456789abcdef

setup() {
  viv_setup
  AGENT="shop-msg-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
  export VIVARY_VAULT_KEY="$BATS_TEST_TMPDIR/keys/vault.key"
  printf 'token-%s' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" >"$BATS_TEST_TMPDIR/token"
  RECEIVED="$BATS_TEST_TMPDIR/received.ndjson"
  : >"$RECEIVED"
  "$VIV_ROOT/node_modules/.bin/bun" "$VIV_ROOT/test/fake-twilio.ts" --account "$ACCOUNT" \
    --token-file "$BATS_TEST_TMPDIR/token" --log "$RECEIVED" >"$BATS_TEST_TMPDIR/fake.url" 2>"$BATS_TEST_TMPDIR/fake.err" &
  FAKE_PID=$!
  wait_for test -s "$BATS_TEST_TMPDIR/fake.url"
  cat >"$POLICY" <<KDL
provider "sms" {
    kind "twilio"
    url "$(head -n 1 "$BATS_TEST_TMPDIR/fake.url")"
    account "$ACCOUNT"
    from "+15550100001"
    credential "twilio-main"
}
agent "$AGENT" {
    grant "messaging-message-send" {
        provider "sms"
        contact "+1 555 010 0000"
        contact "+1 555 010 0002"
        messages max=2 per="day"   // per recipient
    }
}
KDL
  viv secret set twilio-main <"$BATS_TEST_TMPDIR/token"
  start_broker
}

teardown() {
  stop_broker
  if [ -n "${FAKE_PID:-}" ]; then kill "$FAKE_PID" 2>/dev/null || true; fi
}

sent_to() { jq -r .to "$RECEIVED" | grep -c "^$1\$" || true; }

@test "a burst of messages to one recipient never sends more than its daily count; others keep theirs" {
  run -0 viv run --agent "$AGENT" -- sh -c '
    for i in 1 2 3 4 5; do
      ( messaging-message-send --to "+1 (555) 010-0000" --body "m$i" >/dev/null 2>/tmp/err$i; echo "rc=$?" >/tmp/rc$i ) &
    done
    wait
    cat /tmp/rc1 /tmp/rc2 /tmp/rc3 /tmp/rc4 /tmp/rc5 | sort | uniq -c | sed "s/^ *//"
    cat /tmp/err1 /tmp/err2 /tmp/err3 /tmp/err4 /tmp/err5 | sort -u
  '
  [ "${lines[0]}" = "2 rc=0" ]
  [ "${lines[1]}" = "3 rc=75" ]
  [ "${lines[2]}" = "messaging-message-send: 'messages' budget of 2 per day for '+15550100000' would be exceeded: 2 used, this call 1" ]
  [ "$(sent_to +15550100000)" -eq 2 ]
  # Another recipient has its own count.
  run -0 viv run --agent "$AGENT" -- messaging-message-send --to +15550100002 --body other
  [ "$(sent_to +15550100002)" -eq 1 ]
  run -0 viv-log --agent "$AGENT"
  [[ "$output" == *"kind=deny cap=messaging-message-send "*"stage=budget exit=75 "*"budget=messages key=+15550100000 amount=1 max=2 used=2 per=day"* ]]
}

@test "the count per recipient survives a broker restart" {
  run -0 viv run --agent "$AGENT" -- sh -c 'messaging-message-send --to +15550100000 --body a && messaging-message-send --to +15550100000 --body b && messaging-message-send --to +15550100002 --body c'
  stop_broker
  start_broker
  run -75 --separate-stderr viv run --agent "$AGENT" -- messaging-message-send --to +15550100000 --body again
  [ "$stderr" = "messaging-message-send: 'messages' budget of 2 per day for '+15550100000' would be exceeded: 2 used, this call 1" ]
  run -0 viv run --agent "$AGENT" -- messaging-message-send --to +15550100002 --body second
  run -75 viv run --agent "$AGENT" -- messaging-message-send --to +15550100002 --body third
  [ "$(sent_to +15550100000)" -eq 2 ]
  [ "$(sent_to +15550100002)" -eq 2 ]
}

@test "a call refused by its budget spent a rate token, and a restart remembers it" {
  stop_broker
  sed -i -e 's/messages max=2 per="day"/messages max=1 per="day"\n        rate 3 per="day"\n        contact "+1 555 010 0003"/' "$POLICY"
  start_broker
  run -0 viv run --agent "$AGENT" -- messaging-message-send --to +15550100000 --body one
  run -75 viv run --agent "$AGENT" -- messaging-message-send --to +15550100000 --body two
  stop_broker
  start_broker
  # Two tokens of three are spent (the refused call took one too): one more call, then rate.
  run -0 viv run --agent "$AGENT" -- messaging-message-send --to +15550100002 --body three
  run -75 --separate-stderr viv run --agent "$AGENT" -- messaging-message-send --to +15550100003 --body four
  [ "$stderr" = "messaging-message-send: rate limit of 3 calls per day reached" ]
  [ "$(sent_to +15550100003)" -eq 0 ]
}
