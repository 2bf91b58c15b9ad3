"""The staff blueprint and its access rules.

Every page under ``/staff/`` needs a signed-in staff user: ``auth`` registers the check
(which also enforces the idle and absolute session limits) on ``bp``; only the
endpoints in ``PUBLIC_ENDPOINTS`` skip it. Admin-only views add :func:`admin_required`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import Blueprint, abort, g, request
from flask_login import current_user

from portal.services.today import NavCount, nav_counts

bp = Blueprint("staff", __name__, url_prefix="/staff")

#: Endpoints reachable without a session.
PUBLIC_ENDPOINTS = frozenset({"staff.login", "staff.set_password"})


@bp.before_request
def _refuse_nul_bytes() -> None:
    """No submitted form value may hold a NUL byte (PostgreSQL text cannot store one).

    Searches (query strings) drop NUL bytes themselves and still answer.
    """
    if any("\x00" in value for _key, items in request.form.lists() for value in items):
        abort(400)


P = ParamSpec("P")
R = TypeVar("R")


def admin_required(view: Callable[P, R]) -> Callable[P, R]:
    """Refuse a view (403) to staff users who are not admins."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        if not current_user.is_authenticated or not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


#: Page families whose endpoints do not start with their navigation entry's name.
_SECTIONS = {"patient": "patients", "slot": "day", "slots": "day", "flag": "flags"}


@bp.context_processor
def _navigation() -> dict[str, object]:
    """The layout's navigation helpers: counts (queried once, only when shown), sections."""

    def counts() -> dict[str, NavCount]:
        if "staff_nav_counts" not in g:
            g.staff_nav_counts = nav_counts()
        return g.staff_nav_counts

    return {"nav_counts": counts, "nav_section": nav_section}


def nav_section(endpoint: str | None) -> str | None:
    """The navigation entry a page belongs to: ``staff.waitlist_edit`` → ``staff.waitlist``."""
    if not endpoint or not endpoint.startswith("staff."):
        return None
    family = endpoint.removeprefix("staff.").split("_", 1)[0]
    return f"staff.{_SECTIONS.get(family, family)}"
