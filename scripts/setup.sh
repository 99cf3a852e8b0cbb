#!/usr/bin/env bash
# Installs what vivary needs on a fresh Debian 12 machine with Node 20, npm and root, then builds
# dist/. Safe to run again: it installs only what is missing.
set -euo pipefail
# Root is needed (apt-get, jails under per-agent uids): as another user, run again under sudo.
if [ "$(id -u)" -ne 0 ]; then exec sudo -E -- "$0" "$@"; fi
cd "$(dirname "$0")/.."

packages=(bubblewrap systemd-container bats shellcheck curl gcc libc6-dev sqlite3 util-linux procps jq python3 iproute2 bsdutils tmux chromium socat radicale apache2-utils libseccomp-dev strace)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}; run as root to install them" >&2
    exit 69
  fi
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages (Bun included)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

# The real agents the tests run, one pinned client in each test/agents/NAME (package.json and its
# lock), installed there and never into vivary's own node_modules; skipped once installed as locked.
for lock in test/agents/*/package-lock.json; do
  [ -e "$lock" ] || continue
  dir=$(dirname "$lock")
  if [ ! -e "$dir/node_modules/.package-lock.json" ] || [ "$lock" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "setup: installing the test agent in $dir" >&2
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2
  fi
done

echo "setup: building dist/" >&2
node_modules/.bin/bun run build.ts >&2
