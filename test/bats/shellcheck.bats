#!/usr/bin/env bats
# Every shell script in the tree passes shellcheck.

load helpers

@test "every shell script passes shellcheck" {
  cd "$VIV_ROOT"
  mapfile -t scripts < <(git ls-files -co --exclude-standard | grep -E '\.(sh|bash|bats)$|^\.ci/run$')
  [ "${#scripts[@]}" -gt 3 ]
  run shellcheck -x "${scripts[@]}"
  echo "$output"
  [ "$status" -eq 0 ]
}
