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

echo "agent: adding a meeting to the work calendar"
calendar-event-create --title "Review the reports" --start 2026-12-03T10:00:00+01:00 --end 2026-12-03T10:30:00+01:00 --attendees alice@example.com --calendar work
echo "agent: inviting someone outside the granted domains"
calendar-event-create --title "Leak" --start 2026-12-03T11:00:00+01:00 --end 2026-12-03T11:30:00+01:00 --attendees eve@evil.example --calendar work || echo "agent: refused with exit $?"

echo "agent: turning on the kitchen light"
home-device-invoke --device-id light.kitchen --action on
echo "agent: trying a device I was not granted"
home-device-invoke --device-id switch.heater --action on || echo "agent: refused with exit $?"

echo "agent: ordering a book; the order waits for the operator"
commerce-order-create --sku BOOK-1 --quantity 2 --shipping-address-id home --confirm

echo "agent: texting a number I was not granted"
messaging-message-send --to +15550100099 --body "hello" || echo "agent: refused with exit $?"

echo "agent: trying to reach the network"
(exec 3<>/dev/tcp/127.0.0.1/80) 2>/dev/null || echo "agent: no network"
exit 0
