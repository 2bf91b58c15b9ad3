"""``/staff/settings`` (admins): the tunables and the per-category policies.

Both forms are built from the code (``settings_admin``, ``policies_admin``): a field
added to ``Settings`` or a column added to a policy table shows up here by itself.
A refused value is shown beside its field; nothing is saved until every field is fine.
"""

from __future__ import annotations

import re

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from portal.services import catalogue, policies_admin, settings_admin
from portal.services.errors import DomainError
from portal.services.settings_admin import SettingErrors
from portal.web.staff.actions import actor
from portal.web.staff.blueprint import admin_required, bp
from portal.web.transaction import commit_or_conflict

_CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,39}")


@bp.get("/settings")
@admin_required
def settings() -> ResponseReturnValue:
    """Every tunable with its current value and default."""
    return render_template(
        "staff/settings.html", fields=settings_admin.setting_fields(), errors={}, posted=None
    )


@bp.post("/settings")
@admin_required
def settings_save() -> ResponseReturnValue:
    """Validate every tunable; store and audit the changed ones."""
    form = request.form.to_dict()
    try:
        changed = commit_or_conflict(lambda: settings_admin.save_settings(form, actor()))
    except SettingErrors as exc:
        flash(exc.message, "error")
        return (
            render_template(
                "staff/settings.html",
                fields=settings_admin.setting_fields(),
                errors=exc.errors,
                posted=form,
            ),
            422,
        )
    if changed:
        names = ", ".join(settings_admin.label_for(name).lower() for name in changed)
        flash(f"Saved: {names}.", "success")
    else:
        flash("Nothing changed.", "info")
    return redirect(url_for("staff.settings"), 303)


def _policy_page(
    errors: dict[str, dict[str, str]] | None = None, posted: dict | None = None, status: int = 200
) -> ResponseReturnValue:
    categories = catalogue.categories()
    tables = [
        (key, title, policies_admin.columns(key), policies_admin.rows(key, categories))
        for key, (_model, _action, title) in policies_admin.POLICIES.items()
    ]
    return (
        render_template(
            "staff/settings_policies.html", tables=tables, errors=errors or {}, posted=posted or {}
        ),
        status,
    )


@bp.get("/settings/policies")
@admin_required
def settings_policies() -> ResponseReturnValue:
    """How each service category's slots are offered, and its cancellation policy."""
    return _policy_page()


@bp.post("/settings/policies/<key>/<category>")
@admin_required
def settings_policy(key: str, category: str) -> ResponseReturnValue:
    """Save one category's row of one policy table."""
    if key not in policies_admin.POLICIES or not _CATEGORY.fullmatch(category):
        abort(404)
    form = request.form.to_dict()
    try:
        changed = commit_or_conflict(
            lambda: policies_admin.save_policy(key, category, form, actor())
        )
    except SettingErrors as exc:
        flash(
            f"{category.replace('_', ' ').capitalize()}: not saved, see the message below.", "error"
        )
        return _policy_page({f"{key}:{category}": exc.errors}, {f"{key}:{category}": form}, 422)
    except DomainError as exc:
        flash(exc.message, "error")
        return _policy_page(status=422)
    flash(
        f"Saved the {category.replace('_', ' ')} policy." if changed else "Nothing changed.",
        "success" if changed else "info",
    )
    return redirect(url_for("staff.settings_policies") + f"#{key}-{category}", 303)
