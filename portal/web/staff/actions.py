"""Running a staff action: one service call, one commit, an outcome message, the way back.

``perform`` commits through ``commit_or_conflict`` (lost races become a message, never a
500) and flashes the outcome. The caller answers: an htmx request gets the re-rendered
fragment it targets, a plain form a 303 to the page it came from.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from portal.models import StaffUser
from portal.services.audit import Actor
from portal.services.errors import DomainError
from portal.web.staff.auth import safe_next
from portal.web.transaction import commit_or_conflict


def me() -> StaffUser:
    """The signed-in staff user (the model, not Flask-Login's proxy)."""
    return current_user._get_current_object()


def actor() -> Actor:
    return Actor.staff(me())


def perform(action: Callable[[], str]) -> bool:
    """Run ``action`` and commit; flash its message (or why it failed). True if it stood."""
    try:
        message = commit_or_conflict(action)
    except DomainError as exc:
        flash(exc.message, "error")
        return False
    if message:
        flash(message, "success")
    return True


def back_to(default: str) -> ResponseReturnValue:
    """303 to the form's ``next`` (a local path) or ``default``."""
    return redirect(safe_next(request.form.get("next")) or default, 303)
