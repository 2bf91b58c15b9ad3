"""Dependency audit for `make test`: fail on a known vulnerability that has a fix.

Runs pip-audit over the project's virtualenv and reads its JSON report:
- any vulnerability with a fixed version available → exit 1, naming the package, the
  advisory and the version to move to;
- packages the vulnerability service does not know (or an unreachable service) are
  counted and named in one line, not failed: that is "unknown", not "vulnerable".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def verdict(report: dict) -> tuple[int, list[str]]:
    """The exit code and the lines to print for a pip-audit JSON report."""
    dependencies = report.get("dependencies", [])
    audited = [d for d in dependencies if "skip_reason" not in d]
    fixable = [
        (d["name"], d["version"], v["id"], v.get("fix_versions") or [])
        for d in audited
        for v in d.get("vulns", [])
        if v.get("fix_versions")
    ]
    unfixed = sum(1 for d in audited for v in d.get("vulns", []) if not v.get("fix_versions"))
    lines = [
        f"dependency audit: {len(audited)} of {len(dependencies)} packages audited, "
        f"{len(fixable)} fixable and {unfixed} unfixed known vulnerabilities"
    ]
    if len(audited) < len(dependencies):
        skipped = sorted(d["name"] for d in dependencies if "skip_reason" in d)
        lines.append(f"  not known to the vulnerability service: {', '.join(skipped)}")
    lines += [f"  {n} {v}: {a} — fixed in {', '.join(f)}" for n, v, a, f in fixable]
    return (1 if fixable else 0), lines


def main() -> int:
    run = subprocess.run(
        [str(VENV_BIN / "pip-audit"), "--format", "json", "--progress-spinner", "off"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        reason = (run.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"dependency audit: could not run ({reason}); nothing was checked")
        return 0
    code, lines = verdict(report)
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
