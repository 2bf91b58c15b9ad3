"""`make test`'s dependency audit fails on a known vulnerability with a fix, and only then."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "audit_dependencies", Path(__file__).resolve().parents[1] / ".ci" / "audit_dependencies.py"
)
audit = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(audit)


def _dep(name: str, *vulns: dict) -> dict:
    return {"name": name, "version": "1.0", "vulns": list(vulns)}


@pytest.mark.parametrize(
    ("dependencies", "code"),
    [
        ([_dep("flask"), _dep("jinja2")], 0),
        ([_dep("jinja2", {"id": "GHSA-x", "fix_versions": ["3.1.5"]})], 1),
        ([_dep("oldlib", {"id": "PYSEC-y", "fix_versions": []})], 0),  # nothing to move to
        ([{"name": "click", "skip_reason": "not found"}, _dep("flask")], 0),
    ],
    ids=["clean", "fixable", "unfixable", "unknown-package"],
)
def test_only_a_fixable_vulnerability_fails_the_build(dependencies: list, code: int) -> None:
    result, lines = audit.verdict({"dependencies": dependencies})
    assert result == code
    assert lines[0].startswith("dependency audit:")
    if code:
        assert "GHSA-x" in "\n".join(lines) and "3.1.5" in "\n".join(lines)
