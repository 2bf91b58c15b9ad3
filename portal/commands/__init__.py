"""The ``portal`` CLI commands, registered on the group by ``register``."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add every portal command to ``group``."""
    from portal.commands import api, demo, ops, staff

    for module in (ops, demo, staff, api):
        module.register(group)
