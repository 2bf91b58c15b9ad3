"""The staff blueprint and its access rules.

Every page under ``/staff/`` needs a signed-in staff user: ``auth`` registers the check
(which also enforces the idle and absolute session limits) on ``bp``; only the
endpoints in ``PUBLIC_ENDPOINTS`` skip it. Admin-only views add :func:`admin_required`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import Blueprint, abort
from flask_login import current_user

bp = Blueprint("staff", __name__, url_prefix="/staff")

#: Endpoints reachable without a session.
PUBLIC_ENDPOINTS = frozenset({"staff.login"})

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
