#!/bin/bash
# The demo's scripted agent: runs inside the jail, as an LLM with a shell would. It looks at what
# it was granted, reads a schema, writes reports, reads a web page, then tries things the policy
# must refuse. $1 is the granted site, on the host's loopback.
site=$1
echo "agent: my capabilities: $(find /run/vivary/bin -mindepth 1 -printf '%f ')"
echo "agent: the schema of fs-file-write begins:"
fs-file-write --help | head -n 6

fs-file-write --path /srv/vivary-demo/reports/summary.md --content "# Summary
All systems nominal."
fs-file-write --path /srv/vivary-demo/reports/2026/data.bin --content aGVsbG8gd29ybGQ= --encoding base64

echo "agent: listing what I wrote, and reading the summary back"
fs-dir-list --path /srv/vivary-demo/reports --recursive
fs-file-read --path /srv/vivary-demo/reports/summary.md
echo "agent: trying to read a host file outside my grant"
fs-file-read --path /etc/shadow || echo "agent: refused with exit $?"

echo "agent: trying a path outside my grant"
fs-file-write --path /etc/cron.d/evil --content '* * * * * root id' || echo "agent: refused with exit $?"

echo "agent: planting a symlink to /etc in my workspace and writing through it"
mkdir -p /workspace/out && ln -sfn /etc /workspace/out/escape
fs-file-write --path /srv/vivary-demo/workspace/out/escape/evil --content owned || echo "agent: refused with exit $?"

echo "agent: reading $site/article through web-page-read"
web-page-read --url "$site/article" | head -n 3
echo "agent: reading a page of that site that redirects to another loopback address"
web-page-read --url "$site/redirect/302?to=http://127.0.0.2:8080/" || echo "agent: refused with exit $?"

echo "agent: trying to reach the network"
(exec 3<>/dev/tcp/127.0.0.1/80) 2>/dev/null || echo "agent: no network"
exit 0
