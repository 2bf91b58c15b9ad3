"""The staff portal blueprint: every page under ``/staff/`` needs a signed-in staff user.

Views register on ``bp`` in the modules imported at the bottom. Only the login page
is public; everything else passes :func:`_require_staff_session` first, which also
enforces the idle and absolute session limits. Admin-only views add
:func:`admin_required`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import Blueprint, abort, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

bp = Blueprint("staff", __name__, url_prefix="/staff")

#: Endpoints reachable without a session.
PUBLIC_ENDPOINTS = frozenset({"staff.login"})

P = ParamSpec("P")
R = TypeVar("R")


@bp.before_request
def _require_staff_session() -> ResponseReturnValue | None:
    """Send anonymous or expired sessions to the login page; refresh the idle timer."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    return auth.enforce_session()


def admin_required(view: Callable[P, R]) -> Callable[P, R]:
    """Refuse a view (403) to staff users who are not admins."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        if not current_user.is_authenticated or not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


from portal.web.staff import auth, day, home, outbox, patients  # noqa: E402  (views register on bp)

__all__ = [
    "PUBLIC_ENDPOINTS",
    "admin_required",
    "auth",
    "bp",
    "day",
    "home",
    "outbox",
    "patients",
]
