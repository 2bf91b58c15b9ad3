"""The repository documents its own interface: every route, command and setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask

from portal.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
INTERFACE = (ROOT / "docs" / "interface.md").read_text()


def test_the_readme_points_inside_the_repository() -> None:
    assert "shared/" not in README
    assert "](docs/interface.md)" in README


def test_every_route_is_documented(app: Flask) -> None:
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"<\1>", rule.rule)
        if path.startswith("/api/v1/") and path != "/api/v1/openapi.json":
            path = path.removeprefix("/api/v1")
        if f"{path}`" not in INTERFACE and f"{path}?" not in INTERFACE:
            missing.append(path)
    assert missing == []


def test_every_command_is_documented() -> None:
    from portal.commands import register
    from portal.commands.ops import run_command

    cli.add_command(run_command)
    register(cli)
    assert {"run", "demo", "create-staff", "worker"} <= set(cli.commands)
    for name in cli.commands:
        assert f"`portal {name}" in INTERFACE, name
    assert "`portal db upgrade`" in INTERFACE


@pytest.mark.parametrize(
    "name",
    sorted(
        set(re.findall(r'(?:env\.get|_flag)\("([A-Z_]+)"', (ROOT / "portal/config.py").read_text()))
        | {"DATABASE_URL", "REDIS_URL", "PORT", "TEST_DATABASE_URL", "TEST_REDIS_URL"}
    ),
)
def test_every_environment_variable_is_documented(name: str) -> None:
    assert f"`{name}`" in INTERFACE
