#!/usr/bin/env bats
# The governed call end to end through the built binaries: a jailed command writes a file via
# fs-file-write and the audit log shows the call.

load helpers

setup() {
  viv_setup
  policy_one_agent scribe "$HOST/out"
  mkdir -p "$HOST/out"
}

teardown() {
  stop_broker
}

@test "a jailed agent writes a granted file and viv-log shows the call" {
  run -0 viv run --agent scribe -- fs-file-write --path "$HOST/out/a.txt" --content hi
  [ "$output" = "{\"path\":\"$HOST/out/a.txt\",\"bytes_written\":2}" ]
  [ "$(cat "$HOST/out/a.txt")" = hi ]
  run -0 viv-log
  [[ "$output" == *"kind=call cap=fs-file-write"*"args.path=$HOST/out/a.txt"* ]]
}
