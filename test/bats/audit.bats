#!/usr/bin/env bats
# The audit log through the real broker: viv-log's filters and formats, verification of tampered
# copies, checkpoints against truncation, a broker killed with SIGKILL mid-load and restarted
# with the chain intact, policy reloads, and the kill switch.
#
# Scripts for the jail are single-quoted on purpose; bats' `run` sets stderr; BROKER_PID is
# set and cleared within each test.
# shellcheck disable=SC2016,SC2154,SC2030,SC2031

load helpers

setup() {
  viv_setup
  mkdir -p "$HOST/out"
  policy_one_agent scribe "$HOST/out"
}

teardown() {
  stop_broker
}

log_has() {
  viv-log | grep -q "$1"
}

no_process_of() {
  ! pgrep -u "$1" >/dev/null
}

results_at_least() {
  [ "$(viv-log | grep -c 'kind=result')" -ge "$1" ]
}

# calls N: N governed writes from one jail.
calls() {
  viv run --agent scribe -- bash -c 'for i in $(seq 1 "$1"); do fs-file-write --path "$2/f$i" --content "$i" >/dev/null; done' _ "$1" "$HOST/out"
}

# tampered SQL: a copy of the state directory whose log had SQL run on it, triggers dropped first
# (as anyone who owns the file can). Prints the copy's path.
tampered() {
  local copy="$BATS_TEST_TMPDIR/copy-$RANDOM"
  cp -a "$STATE" "$copy"
  sqlite3 "$copy/audit.db" "DROP TRIGGER records_append_only_update; DROP TRIGGER records_append_only_delete; $1"
  echo "$copy"
}

@test "viv-log prints one line per record with seq, agent, kind and cap, and filters them" {
  calls 2
  viv run --agent scribe -- fs-file-write --path /etc/nope --content x || true
  run -0 viv-log
  [ "${#lines[@]}" -ge 9 ]
  local re='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z seq=[0-9]+ agent=[^ ]+ kind=[a-z-]+ cap=[^ ]+'
  for l in "${lines[@]}"; do
    [[ "$l" =~ $re ]]
  done
  run -0 viv-log --agent scribe --cap fs-file-write
  [[ "$output" != *"agent=-"* ]]
  [ "$(grep -c 'kind=call' <<<"$output")" -eq 2 ]
  [ "$(grep -c 'kind=deny.*reason="cannot write '"'"'/etc/nope'"'"': outside granted path' <<<"$output")" -eq 1 ]
  run -0 viv-log --agent nobody
  [ "$output" = "" ]
  run -0 viv-log --since 1h
  [ "${#lines[@]}" -ge 9 ]
  run -0 viv-log --since 2999-01-01T00:00:00Z
  [ "$output" = "" ]
}

@test "viv-log --json prints the same records as NDJSON, raw frames included" {
  calls 1
  run -0 viv-log --json --cap fs-file-write
  [ "$(jq -r .kind <<<"$output" | tr '\n' ' ')" = "call result " ]
  [ "$(jq -r 'select(.kind == "call") | .args.path' <<<"$output")" = "$HOST/out/f1" ]
  [ "$(jq -r 'select(.kind == "result") | .exit' <<<"$output")" = 0 ]
  # The call record keeps the CALL frame exactly: length prefix, type 0x10, then the cap name.
  [ "$(jq -r 'select(.kind == "call") | .raw' <<<"$output" | base64 -d | od -An -tx1 -j4 -N5 | tr -d ' \n')" = "100000000d" ]
  # viv-log decodes the frames it keeps: the CALL as sent, the RESULT as answered.
  [ "$(jq -c 'select(.kind == "call") | .frames' <<<"$output")" = "[{\"type\":\"call\",\"cap\":\"fs-file-write\",\"args\":[\"--path\",\"$HOST/out/f1\",\"--content\",\"1\"]}]" ]
  [ "$(jq -r 'select(.kind == "result") | .frames[0].stdout' <<<"$output")" = "{\"path\":\"$HOST/out/f1\",\"bytes_written\":1}" ]
}

@test "viv-log --follow prints records as they are written" {
  calls 1
  viv-log --follow >"$BATS_TEST_TMPDIR/follow" &
  local pid=$!
  wait_for grep -q 'args.path=.*f1' "$BATS_TEST_TMPDIR/follow"
  viv run --agent scribe -- fs-file-write --path "$HOST/out/later" --content x
  wait_for grep -q "args.path=$HOST/out/later" "$BATS_TEST_TMPDIR/follow"
  kill "$pid"
}

@test "verify passes on an untouched log and names the first broken record of tampered copies" {
  calls 3
  run -0 viv-log verify
  [[ "$output" == "ok: "*" records, head seq="* ]]

  run -65 --separate-stderr viv-log verify --state "$(tampered "UPDATE records SET fields = replace(fields, 'f2', 'f9') WHERE seq = 6")"
  [ "$stderr" = "viv-log: verify: record seq=6: content does not match its hash (edited)" ]

  run -65 --separate-stderr viv-log verify --state "$(tampered "DELETE FROM records WHERE seq = 4")"
  [ "$stderr" = "viv-log: verify: record seq=4: missing (next is seq 5)" ]

  run -65 --separate-stderr viv-log verify --state "$(tampered "UPDATE records SET seq = -1 WHERE seq = 3; UPDATE records SET seq = 3 WHERE seq = 5; UPDATE records SET seq = 5 WHERE seq = -1")"
  [ "$stderr" = "viv-log: verify: record seq=3: does not follow the record before it (reordered or replaced)" ]
}

@test "the log refuses UPDATE and DELETE through SQLite itself" {
  calls 1
  run sqlite3 "$STATE/audit.db" "UPDATE records SET agent = 'x' WHERE seq = 2"
  [ "$status" -ne 0 ]
  [[ "$output" == *"audit log is append-only"* ]]
  run sqlite3 "$STATE/audit.db" "DELETE FROM records"
  [[ "$output" == *"audit log is append-only"* ]]
  run -0 viv-log verify
}

@test "a checkpoint detects a truncated tail that verify alone cannot" {
  calls 2
  run -0 viv-log checkpoint
  [[ "$output" =~ ^seq=[0-9]+\ hash=[0-9a-f]{64}$ ]]
  echo "$output" >"$BATS_TEST_TMPDIR/checkpoint"
  local seq=${output#seq=}
  seq=${seq%% *}
  run -0 viv-log verify --checkpoint "$BATS_TEST_TMPDIR/checkpoint"
  [[ "$output" == *"checkpoint seq=$seq matches"* ]]

  local cut
  cut=$(tampered "DELETE FROM records WHERE seq > $((seq - 2))")
  run -0 viv-log verify --state "$cut"
  run -65 --separate-stderr viv-log verify --state "$cut" --checkpoint "$BATS_TEST_TMPDIR/checkpoint"
  [ "$stderr" = "viv-log: verify: log ends at seq=$((seq - 2)) but the checkpoint names seq=$seq (truncated)" ]

  run -64 --separate-stderr viv-log verify --checkpoint "$BATS_TEST_TMPDIR/none"
  [ "$stderr" = "viv-log: cannot read checkpoint '$BATS_TEST_TMPDIR/none': ENOENT" ]
}

@test "viv-log rotate archives the log under a running broker and verify walks both files as one chain" {
  start_broker
  calls 2
  run -0 viv-log checkpoint
  echo "$output" >"$BATS_TEST_TMPDIR/before"
  local last=${output#seq=}
  last=${last%% *}
  run -0 viv-log rotate
  [ "$output" = "rotated: records 1..$last to $STATE/archive/audit-1-$last.db; the log continues at seq=$((last + 1))" ]
  calls 1
  run -0 viv-log
  [[ "${lines[0]}" == *" seq=$((last + 1)) agent=- kind=rotate cap=- archive=audit-1-$last.db previous_seq=$last "* ]]
  run -0 viv-log verify --checkpoint "$BATS_TEST_TMPDIR/before"
  [[ "$output" == "ok: "*" records across 1 archive and the live log, head seq="*", checkpoint seq=$last matches" ]]
  # An edited archive is found; so is one replaced by a shorter log.
  stop_broker
  local copy="$BATS_TEST_TMPDIR/copy"
  cp -a "$STATE" "$copy"
  sqlite3 "$copy/archive/audit-1-$last.db" "DROP TRIGGER records_append_only_update; UPDATE records SET agent = 'x' WHERE seq = 2"
  run -65 --separate-stderr viv-log verify --state "$copy"
  [ "$stderr" = "viv-log: verify: archive 'audit-1-$last.db': record seq=2: content does not match its hash (edited)" ]
  # Moved off the host, the archive is named with the head a checkpoint must match there.
  mv "$STATE/archive/audit-1-$last.db" "$BATS_TEST_TMPDIR/"
  run -0 viv-log verify
  [[ "$output" == *"; records up to seq=$last are in archive 'audit-1-$last.db', not in '$STATE/archive': verify it where it is kept, against a checkpoint '$(cat "$BATS_TEST_TMPDIR/before")'" ]]
}

@test "viv-log rotate with no broker running rotates under the broker's lock, and the next broker continues the chain" {
  calls 1
  run -0 viv-log rotate
  [[ "$output" == "rotated: records 1.."* ]]
  calls 1
  run -0 viv-log verify
  [[ "$output" == *"across 1 archive and the live log"* ]]
  run -0 viv-log rotate
  run -0 viv-log verify
  [[ "$output" == *"across 2 archives and the live log"* ]]
}

@test "a broker killed with SIGKILL mid-load is replaced, with the chain intact and nothing acknowledged lost" {
  policy_one_agent scribe "$HOST/out" "$BATS_TEST_TMPDIR/ws"
  start_broker
  # Every call whose stub exited 0 (an acknowledged call) is noted in the workspace.
  viv run --agent scribe -- bash -c '
    for i in $(seq 1 400); do
      if fs-file-write --path "$1/k$i" --content "$i" >/dev/null 2>>/workspace/errors; then echo "k$i" >>/workspace/acked; fi
    done' _ "$HOST/out" &
  local load=$!
  wait_for results_at_least 20
  kill -KILL "$BROKER_PID"
  wait "$BROKER_PID" || true
  BROKER_PID=""
  # viv run starts a broker of its own, and the jail's calls wait for it.
  wait "$load"

  run -0 viv-log verify
  viv-log --json --cap fs-file-write >"$BATS_TEST_TMPDIR/log.json"
  # At most the call in flight at the kill was not acknowledged.
  local acked
  acked=$(wc -l <"$BATS_TEST_TMPDIR/ws/acked")
  cat "$BATS_TEST_TMPDIR/ws/errors" 2>/dev/null || true   # shown when the test fails
  [ "$acked" -ge 399 ]
  # Every acknowledged call has its intent and an exit=0 outcome on the same connection, and its
  # content on disk. One pass: the paths whose intent's connection has an exit=0 result.
  jq -rs '(map(select(.kind == "call")) | map({key: (.conn | tostring), value: .args.path}) | from_entries) as $path
    | map(select(.kind == "result" and .exit == 0) | $path[.conn | tostring]) | .[]' "$BATS_TEST_TMPDIR/log.json" | sort >"$BATS_TEST_TMPDIR/done"
  sed "s|^|$HOST/out/|" "$BATS_TEST_TMPDIR/ws/acked" | sort >"$BATS_TEST_TMPDIR/acked.paths"
  [ -z "$(comm -23 "$BATS_TEST_TMPDIR/acked.paths" "$BATS_TEST_TMPDIR/done")" ]
  local name
  while read -r name; do [ "$(cat "$HOST/out/$name")" = "${name#k}" ]; done <"$BATS_TEST_TMPDIR/ws/acked"
  # The restart is on the record, after the records of the killed broker.
  [ "$(viv-log | grep -c 'kind=broker.*event=start')" -eq 2 ]
}

@test "viv run refuses a policy file that differs from the one the running broker serves" {
  start_broker
  cp "$POLICY" "$BATS_TEST_TMPDIR/other.kdl"
  echo '// changed' >>"$BATS_TEST_TMPDIR/other.kdl"
  run -78 --separate-stderr viv run --agent scribe --policy "$BATS_TEST_TMPDIR/other.kdl" -- true
  [[ "$stderr" == "viv: the broker serving '$STATE' (pid $BROKER_PID) runs policy "*", not '$BATS_TEST_TMPDIR/other.kdl' ("*"); reload it with 'kill -HUP $BROKER_PID', or stop it" ]]
  run -0 viv run --agent scribe -- true
}

@test "SIGHUP reloads a valid policy and refuses an invalid one, keeping the chain" {
  start_broker
  run -77 viv run --agent other -- true
  cat >>"$POLICY" <<KDL
agent "other" {
    grant "fs-file-write" {
        path "$HOST/out"
    }
}
KDL
  kill -HUP "$BROKER_PID"
  wait_for viv run --agent other -- true
  run -0 viv run --agent other -- fs-file-write --path "$HOST/out/o" --content x

  echo 'agent "broken" { grant "no-such-cap" }' >>"$POLICY"
  kill -HUP "$BROKER_PID"
  wait_for log_has 'kind=broker.*event=policy-reload-refused' 
  run -0 viv-log
  [[ "$output" == *'event=policy-reload-refused reason="'"$POLICY"':'*": unknown capability 'no-such-cap'\""* ]]
  run -0 viv run --agent other -- fs-file-write --path "$HOST/out/o2" --content y
  run -0 viv-log verify
}

@test "viv kill ends the agent's jail, revokes its socket and is recorded" {
  start_broker
  viv run --agent scribe -- sleep 300 &
  local run_pid=$!
  wait_for pgrep -u "$(agent_uid scribe)" sleep
  local uid
  uid=$(agent_uid scribe)
  run -0 viv kill scribe --reason 'runaway loop'
  local rc=0
  wait "$run_pid" 2>"$BATS_TEST_TMPDIR/run.err" || rc=$?
  [ "$rc" -eq 77 ]
  wait_for no_process_of "$uid"
  [ ! -e "$STATE/agents/scribe/run/broker.sock" ]
  run -0 viv-log --agent scribe
  [[ "$output" == *'kind=kill cap=- by=operator reason="runaway loop" jails='* ]]
  run -0 viv ps
  [[ "$output" == *"agent=scribe uid=$uid connections=0 jails=- calls=0 denials=0 pending=0 killed_by=operator browser=- caps=fs-file-write"* ]]
  run -77 --separate-stderr viv run --agent scribe -- true
  [ "$stderr" = "viv: agent 'scribe' was stopped by the kill switch (runaway loop); it runs again after the broker restarts" ]
  # A reload does not bring a killed agent back.
  kill -HUP "$BROKER_PID"
  wait_for log_has 'event=policy-reload ' 
  [ ! -e "$STATE/agents/scribe/run/broker.sock" ]
}
