// Table tests of the path scope matcher and the broad-grant refusal (policy/scope.ts).
import { describe, expect, test } from "bun:test";
import { matchPath, refuseBroadDirectory } from "../policy/scope.ts";

describe("matchPath", () => {
  const granted = ["/srv/reports", "/srv/reports/deep", "/home/u/notes"];
  const cases: [string, string | null, string[] | string][] = [
    ["/srv/reports/a.md", "/srv/reports", ["a.md"]],
    ["/srv/reports/x/y/z", "/srv/reports", ["x", "y", "z"]],
    ["/srv/reports/deep/a", "/srv/reports/deep", ["a"]],
    ["/home/u/notes/n", "/home/u/notes", ["n"]],
    ["/srv/reports-evil/a", null, "outside granted paths '/srv/reports', '/srv/reports/deep', '/home/u/notes'"],
    ["/srv/reports", null, "outside granted paths '/srv/reports', '/srv/reports/deep', '/home/u/notes'"],
    ["/srv/report", null, "outside granted paths '/srv/reports', '/srv/reports/deep', '/home/u/notes'"],
    ["/srv/reports/../etc/passwd", null, "path has a '..' component"],
    ["/srv/reports/./a", null, "path has a '.' component"],
    ["/srv/reports//a", null, "path has an empty component (// or a trailing /)"],
    ["/srv/reports/a/", null, "path has an empty component (// or a trailing /)"],
    ["srv/reports/a", null, "path not an absolute path"],
    ["/srv/reports/a\0b", null, "path contains NUL"],
    [`/srv/reports/${"x".repeat(256)}`, null, "path has a component longer than 255 bytes"],
  ];
  for (const [req, root, expected] of cases) {
    test(JSON.stringify(req).slice(0, 60), () => {
      const m = matchPath(req, granted);
      if (root) expect(m).toEqual({ ok: true, root, relative: expected as string[] });
      else expect(m).toEqual({ ok: false, reason: expected as string });
    });
  }
  test("one grant is named in the singular", () => {
    expect(matchPath("/etc/x", ["/srv/r"])).toEqual({ ok: false, reason: "outside granted path '/srv/r'" });
  });
});

describe("refuseBroadDirectory", () => {
  const cases: [string, string | null][] = [
    ["/srv/reports", null],
    ["/var/lib/agents/a", null],
    ["/", "grants the whole filesystem"],
    ["/home", "is a top-level directory; name a directory at least two levels deep"],
    ["/var/lib/vivary/x", "overlaps the system tree '/var/lib/vivary'"],
    ["/var/lib", "overlaps the system tree '/var/lib/vivary'"],
    ["/dev/shm", "overlaps the system tree '/dev'"],
    ["/sys/fs", "overlaps the system tree '/sys'"],
    ["/run/user", "overlaps the system tree '/run'"],
    ["/boot/efi", "overlaps the system tree '/boot'"],
  ];
  for (const [p, why] of cases) test(p, () => expect(refuseBroadDirectory(p)).toBe(why));
});
