#!/usr/bin/env bats
# Approval gates against a real broker and real jails: approve, deny, timeout, a second approve
# of the same id, a target swapped while the call waits, the console on a real terminal (tmux)
# with hostile arguments shown escaped, piped input that must never approve, the bound on
# pending calls, a `via` program, and what a stop, a crash and the kill switch do to waiting calls.
#
# Scripts for the jail are single-quoted on purpose; bats' `run` sets stderr and status.
# shellcheck disable=SC2016,SC2154,SC2030,SC2031

load helpers

setup() {
  viv_setup
  mkdir -p "$HOST/g" "$HOST/outside" "$BATS_TEST_TMPDIR/ws"
  chmod 0755 "$BATS_TEST_TMPDIR/ws"
  approval_policy 'approval timeout="60s"'
  RUN_PIDS=()
}

teardown() {
  local p
  for p in "${RUN_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${RUN_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  tmux kill-session -t "viv-$BATS_TEST_NUMBER-$$" 2>/dev/null || true
  stop_broker
}

# approval_policy APPROVAL_NODE: agent alpha may write under HOST/g, each call approved; beta
# writes under HOST/b with no approval.
approval_policy() {
  mkdir -p "$HOST/b"
  cat >"$POLICY" <<KDL
agent "alpha" {
    workspace "$BATS_TEST_TMPDIR/ws/alpha"
    grant "fs-file-write" {
        path "$HOST/g"
        $1
    }
}
agent "beta" {
    grant "fs-file-write" { path "$HOST/b"; }
}
KDL
}

pending_count() { viv approvals | wc -l; }
has_pending() { [ "$(pending_count)" -ge "${1:-1}" ]; }
first_id() { viv approvals --json | jq -r .id | head -n 1; }
log_has() { viv-log | grep -q "$1"; }

# call_in_background NAME CONTENT: alpha writes HOST/g/NAME; exit status and streams to files.
call_in_background() {
  viv run --agent alpha -- fs-file-write --path "$HOST/g/$1" --content "$2" >"$BATS_TEST_TMPDIR/$1.out" 2>"$BATS_TEST_TMPDIR/$1.err" &
  RUN_PIDS+=($!)
  CALL_PID=$!
}

# exits_with CODE: the background call (CALL_PID) ends with CODE. Not in a subshell: only this
# shell can wait for its children.
exits_with() {
  local rc=0
  wait "$CALL_PID" || rc=$?
  [ "$rc" -eq "$1" ]
}

@test "an approved call runs once, and the log holds the request, the decision and the decider" {
  start_broker
  call_in_background a.txt hello
  wait_for has_pending
  run -0 viv approvals
  [[ "$output" == "id="*" agent=alpha cap=fs-file-write risk=medium expires_in="*"s target=\"$HOST/g/a.txt (under granted $HOST/g)\" args.path=$HOST/g/a.txt args.content=hello args.encoding=utf-8 request_sha256="* ]]
  local id
  id=$(first_id)
  [ ! -e "$HOST/g/a.txt" ]
  SUDO_USER=ops-alice run -0 viv approve "$id"
  exits_with 0
  [ "$(cat "$HOST/g/a.txt")" = hello ]
  run -0 viv-log --agent alpha
  [[ "$output" == *"kind=approval-request cap=fs-file-write conn="*" id=$id risk=medium "* ]]
  [[ "$output" == *"kind=approval cap=fs-file-write conn="*" id=$id decision=approve by=operator who=ops-alice request_sha256="* ]]
  [[ "$output" == *"kind=call cap=fs-file-write conn="*" approval=$id request_sha256="* ]]
  # Single use: the same id approves nothing more.
  run -65 --separate-stderr viv approve "$id"
  [ "$stderr" = "viv: no pending call '$id' (already decided, timed out, or never requested)" ]
}

@test "a denied call exits 77 with the operator's reason and writes nothing" {
  start_broker
  call_in_background d.txt no
  wait_for has_pending
  run -0 viv deny "$(first_id)" --reason 'not today'
  exits_with 77
  [ "$(cat "$BATS_TEST_TMPDIR/d.txt.err")" = "fs-file-write: not today" ]
  [ ! -e "$HOST/g/d.txt" ]
  run -0 viv-log --agent alpha
  [[ "$output" == *"kind=approval "*"decision=deny by=operator who="*' reason="not today"'* ]]
  [[ "$output" == *"kind=deny cap=fs-file-write "*"stage=approval exit=77"* ]]
}

@test "no decision in time denies with 75, recorded as a timeout" {
  approval_policy 'approval timeout="1s"'
  start_broker
  run -75 --separate-stderr viv run --agent alpha -- fs-file-write --path "$HOST/g/t.txt" --content x
  [ "$stderr" = "fs-file-write: no decision within 1 s" ]
  [ ! -e "$HOST/g/t.txt" ]
  run -0 viv-log --agent alpha
  [[ "$output" == *"decision=timeout by=broker"* ]]
  [ "$(viv approvals | wc -l)" -eq 0 ]
}

@test "a target swapped for a symlink while the call waits gets nothing outside the grant" {
  # The workspace is the granted directory: the agent can plant links there.
  approval_policy 'approval timeout="60s"'
  sed -i "s|workspace \"$BATS_TEST_TMPDIR/ws/alpha\"|workspace \"$HOST/g\"|" "$POLICY"
  rmdir "$HOST/g"
  start_broker
  viv run --agent alpha -- sh -c '
    mkdir -p /workspace/sub
    fs-file-write --path "$1/sub/f" --content swapped 2>/dev/null &
    while [ ! -e /workspace/approved-soon ]; do sleep 0.05; done
    mv /workspace/sub /workspace/sub.old && ln -s "$2" /workspace/sub
    touch /workspace/swapped
    wait $!' _ "$HOST/g" "$HOST/outside" >/dev/null 2>&1 &
  RUN_PIDS+=($!)
  wait_for has_pending
  local id
  id=$(first_id)
  touch "$HOST/g/approved-soon"
  wait_for test -e "$HOST/g/swapped"
  run -0 viv approve "$id"
  wait "${RUN_PIDS[0]}" || true
  [ ! -e "$HOST/outside/f" ]
  [ ! -e "$HOST/g/sub.old/f" ]
  run -0 viv-log --agent alpha
  [[ "$output" == *"kind=deny cap=fs-file-write "*"stage=execute exit=77 reason=\"cannot write '$HOST/g/sub/f': '$HOST/g/sub' is a symlink\""* ]]
}

@test "the console shows hostile arguments escaped and approves only after the typed confirmation" {
  start_broker
  viv run --agent alpha -- fs-file-write --path "$HOST/g/c.txt" --content $'red\e[31mRED\e]0;pwned\a\u202eevil' >/dev/null 2>&1 &
  RUN_PIDS+=($!)
  wait_for has_pending
  local id s="viv-$BATS_TEST_NUMBER-$$"
  id=$(first_id)
  tmux new-session -d -s "$s" -x 200 -y 40 "env -u CI VIVARY_STATE='$STATE' viv approvals --watch"
  screen() { tmux capture-pane -p -t "$s"; }
  screen_has() { screen | grep -qF -- "$1"; }
  wait_for screen_has "$id"
  screen_has 'args.content="red\x1b[31mRED\x1b]0;pwned\x07\u{202e}evil"'
  # A wrong confirmation approves nothing.
  tmux send-keys -t "$s" a
  wait_for screen_has "approve $id: type its first 4 characters"
  tmux send-keys -t "$s" zzzz
  wait_for screen_has ': zzzz'
  tmux send-keys -t "$s" Enter
  wait_for screen_has "not approved"
  has_pending 1
  # The right one does.
  tmux send-keys -t "$s" a
  wait_for screen_has "approve $id: type its first 4 characters"
  tmux send-keys -t "$s" "${id:0:4}"
  wait_for screen_has ": ${id:0:4}"
  tmux send-keys -t "$s" Enter
  wait_for screen_has "approved $id"
  wait "${RUN_PIDS[0]}"
  [ -e "$HOST/g/c.txt" ]
}

@test "input that is not a terminal never approves anything" {
  start_broker
  call_in_background p.txt x
  wait_for has_pending
  local id
  id=$(first_id)
  run -124 timeout 3 bash -c "yes | viv approvals --watch"
  [[ "$output" == "pending id=$id agent=alpha cap=fs-file-write "* ]]
  has_pending 1
  [ ! -e "$HOST/g/p.txt" ]
  run -0 viv deny "$id"
  exits_with 77
}

@test "pending calls are bounded per agent; the excess is refused and the other agent is served" {
  start_broker
  local i
  for i in 1 2 3 4 5 6 7 8; do call_in_background "b$i" x; done
  # On a failure, what the calls and the broker said.
  wait_for has_pending 8 || { viv approvals; tail -n +1 "$BATS_TEST_TMPDIR"/b?.err "$BATS_TEST_TMPDIR/broker.err"; false; }
  run -75 --separate-stderr viv run --agent alpha -- fs-file-write --path "$HOST/g/b9" --content x
  [ "$stderr" = "fs-file-write: too many calls of agent 'alpha' wait for approval (at most 8)" ]
  run -0 viv run --agent beta -- fs-file-write --path "$HOST/b/ok" --content x
  run -0 viv-log --agent alpha
  [[ "$output" == *"kind=deny cap=fs-file-write "*"stage=approval exit=75 reason=\"too many calls"* ]]
  [ "$(pending_count)" -eq 8 ]
}

@test "a via program decides by its exit status and gets the canonical request on stdin" {
  cat >"$BATS_TEST_TMPDIR/decide" <<SH
#!/bin/sh
cat >>"$BATS_TEST_TMPDIR/requests"
grep -q '"content":"yes"' "$BATS_TEST_TMPDIR/requests" && tail -n 1 "$BATS_TEST_TMPDIR/requests" | grep -q '"content":"yes"'
SH
  chmod +x "$BATS_TEST_TMPDIR/decide"
  approval_policy "approval timeout=\"30s\" via=\"$BATS_TEST_TMPDIR/decide\""
  start_broker
  run -0 viv run --agent alpha -- fs-file-write --path "$HOST/g/v1" --content yes
  run -77 --separate-stderr viv run --agent alpha -- fs-file-write --path "$HOST/g/v2" --content no
  [ "$stderr" = "fs-file-write: denied by approval program '$BATS_TEST_TMPDIR/decide' (exit 1)" ]
  [ -e "$HOST/g/v1" ]
  [ ! -e "$HOST/g/v2" ]
  [ "$(jq -r 'select(.args.content == "yes") | [.agent, .cap, .risk, .args.path] | join(" ")' "$BATS_TEST_TMPDIR/requests")" = "alpha fs-file-write medium $HOST/g/v1" ]
  run -0 viv-log --agent alpha
  [[ "$output" == *"decision=approve by=program who=$BATS_TEST_TMPDIR/decide"* ]]
  [[ "$output" == *"decision=deny by=program who=$BATS_TEST_TMPDIR/decide"* ]]
}

@test "waiting calls are denied by a stop (75), a crash (at the next start) and the kill switch (77)" {
  start_broker
  call_in_background s.txt x
  wait_for has_pending
  stop_broker
  exits_with 75
  [ "$(cat "$BATS_TEST_TMPDIR/s.txt.err")" = "fs-file-write: the broker is stopping; try again" ]

  start_broker
  call_in_background k.txt x
  wait_for has_pending
  kill -KILL "$BROKER_PID"
  BROKER_PID=""
  # The call's connection died with the broker: not acknowledged.
  local rc=0
  wait "$CALL_PID" || rc=$?
  [ "$rc" -eq 76 ]
  # The next start closes the old request as denied; it does not carry over.
  start_broker
  run -0 viv-log --agent alpha
  [[ "$output" == *"kind=approval cap=fs-file-write "*"decision=restart by=broker reason=\"the broker restarted while the call waited"* ]]
  [ ! -e "$HOST/g/k.txt" ]

  # The kill switch denies what waits, and the run ends.
  viv run --agent alpha -- sh -c 'fs-file-write --path "$1/q" --content x; sleep 60' _ "$HOST/g" >/dev/null 2>&1 &
  RUN_PIDS+=($!)
  wait_for has_pending
  run -0 viv kill alpha
  wait_for log_has 'decision=kill by=operator'
  [ "$(pending_count)" -eq 0 ]
  [ ! -e "$HOST/g/q" ]
  run -0 viv-log verify
}
