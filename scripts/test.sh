#!/usr/bin/env bash
# Installs what is needed and runs every test suite: bun test (unit and spawn tests), then the
# bats suites against real jails and a real broker (shellcheck runs as one of them). Ends with
# one line "N passed, N failed" summing all suites; exits non-zero if anything failed.
set -uo pipefail
# Root is needed (apt-get, jails under per-agent uids): as another user, run again under sudo.
if [ "$(id -u)" -ne 0 ]; then exec sudo -E -- "$0" "$@"; fi
cd "$(dirname "$0")/.." || exit 1
./scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

node_modules/.bin/bun test 2>&1 | tee "$out/bun.log"
bun_rc=${PIPESTATUS[0]}
bun_pass=$(sed -n 's/^ *\([0-9][0-9]*\) pass$/\1/p' "$out/bun.log" | tail -n 1)
bun_fail=$(sed -n 's/^ *\([0-9][0-9]*\) fail$/\1/p' "$out/bun.log" | tail -n 1)

# Two bats runs side by side, each serial within: the suites of test/bats (some of which give
# their agents fixed names, so fixed uids, which the kill switch and the checks for leftover
# processes go by) and the capabilities' suites (whose agents have unique names).
mapfile -t core < <(find test/bats -name '*.bats' | sort)
mapfile -t caps < <(find capabilities -name '*.bats' | sort)
bats --timing --formatter tap "${core[@]}" >"$out/bats-core.log" 2>&1 &
core_pid=$!
bats --timing --formatter tap "${caps[@]}" >"$out/bats-caps.log" 2>&1 &
caps_pid=$!
bats_rc=0
wait "$core_pid" || bats_rc=$?
wait "$caps_pid" || bats_rc=$?
cat "$out/bats-core.log" "$out/bats-caps.log" | tee "$out/bats.log"
bats_pass=$(grep -c '^ok ' "$out/bats.log")
bats_fail=$(grep -c '^not ok ' "$out/bats.log")

passed=$(( ${bun_pass:-0} + bats_pass ))
failed=$(( ${bun_fail:-0} + bats_fail ))
# A runner that failed without reporting a failing test still counts as one failure.
if [ "$bun_rc" -ne 0 ] && [ "${bun_fail:-0}" -eq 0 ]; then failed=$((failed + 1)); fi
if [ "$bats_rc" -ne 0 ] && [ "$bats_fail" -eq 0 ]; then failed=$((failed + 1)); fi
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
