"""``/staff/settings/staff`` (admins): accounts, invitations, roles, deactivation; and the
public ``/staff/set-password/<token>`` page an invited person opens once."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from portal.db import db
from portal.models import StaffUser
from portal.models.enums import StaffRole
from portal.services import staff_admin
from portal.services.errors import DomainError
from portal.services.passwords import MIN_PASSWORD_LENGTH
from portal.web.staff.actions import actor, perform
from portal.web.staff.blueprint import admin_required, bp
from portal.web.transaction import commit_or_conflict


def _link(user: StaffUser) -> str:
    return url_for(
        "staff.set_password", token=staff_admin.password_link_token(user), _external=True
    )


def _page(
    link_for: StaffUser | None = None,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    return (
        render_template(
            "staff/staff_users.html",
            users=staff_admin.all_staff(),
            is_invited=staff_admin.is_invited,
            link_for=link_for,
            link=_link(link_for) if link_for else None,
            link_hours=staff_admin.LINK_HOURS,
            roles=[r.value for r in StaffRole],
            form=form or {},
            error=error,
        ),
        status,
    )


@bp.get("/settings/staff")
@admin_required
def settings_staff() -> ResponseReturnValue:
    """Every staff account, and the form to invite someone."""
    return _page()


@bp.post("/settings/staff/invite")
@admin_required
def settings_staff_invite() -> ResponseReturnValue:
    """Create an account and show its one-time set-password link."""
    form = request.form.to_dict()
    try:
        user = commit_or_conflict(
            lambda: staff_admin.invite(
                form.get("email", ""), form.get("name", ""), form.get("role", ""), actor()
            )
        )
    except DomainError as exc:
        return _page(form=form, error=exc.message, status=422)
    flash(f"{user.name} is invited. Send them the link below; it works once.", "success")
    return _page(link_for=user)


def _user(user_id: int) -> StaffUser:
    found = db.session.get(StaffUser, user_id)
    if found is None:
        abort(404)
    return found


@bp.post("/settings/staff/<id:user_id>/link")
@admin_required
def settings_staff_link(user_id: int) -> ResponseReturnValue:
    """A new set-password link (for an invitation that lapsed, or a forgotten password)."""
    user = _user(user_id)
    if not user.active:
        flash("Reactivate the account first.", "error")
        return redirect(url_for("staff.settings_staff"), 303)
    return _page(link_for=user)


@bp.post("/settings/staff/<id:user_id>/role")
@admin_required
def settings_staff_role(user_id: int) -> ResponseReturnValue:
    """Make the account staff or admin."""
    user = _user(user_id)
    role = request.form.get("role", "")
    perform(
        lambda: (
            f"{user.name} is now {role}."
            if staff_admin.set_role(_user(user_id), role, actor())
            else ""
        )
    )
    return redirect(url_for("staff.settings_staff"), 303)


@bp.post("/settings/staff/<id:user_id>/active")
@admin_required
def settings_staff_active(user_id: int) -> ResponseReturnValue:
    """Deactivate an account (every session of it ends at once) or reactivate it."""
    user = _user(user_id)
    active = request.form.get("active") == "1"
    done = "reactivated" if active else "deactivated: their sessions have ended"
    perform(
        lambda: (
            f"{user.name} is {done}."
            if staff_admin.set_active(_user(user_id), active, actor())
            else ""
        )
    )
    return redirect(url_for("staff.settings_staff"), 303)


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str) -> ResponseReturnValue:
    """Choose a password from an invitation or reset link (once)."""
    user = staff_admin.user_for_token(token)
    if user is None:
        return render_template("staff/set_password.html", user=None, error=None), 410
    if request.method == "GET":
        return render_template(
            "staff/set_password.html", user=user, error=None, minimum=MIN_PASSWORD_LENGTH
        )
    password = request.form.get("password", "")
    if password != request.form.get("confirm", ""):
        error = "The two passwords are not the same."
        return render_template(
            "staff/set_password.html", user=user, error=error, minimum=MIN_PASSWORD_LENGTH
        ), 422
    try:
        commit_or_conflict(
            lambda: staff_admin.set_password_from_link(
                staff_admin.user_for_token(token) or user, password
            )
        )
    except DomainError as exc:
        return render_template(
            "staff/set_password.html", user=user, error=exc.message, minimum=MIN_PASSWORD_LENGTH
        ), 422
    flash("Your password is set. Sign in with your email and the new password.", "success")
    return redirect(url_for("staff.login"), 303)
