"""A form posted from an expired session (a CSRF failure): say so, and where to try again.

The CSRF check runs before any view, so nothing was done. The person gets a branded
page (status 400) with one button to the place to try again: the sign-in form (with
where they were going), the page the action came from, or the patient's own offer or
appointment. An htmx request is sent to reload the page it came from, with a message.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Response, flash, make_response, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from portal.extensions import htmx

TITLE = "Your session expired"
HTMX_MESSAGE = "Your session expired, so nothing was changed. Please try again."


def _safe_local(target: str | None) -> str | None:
    from portal.web.staff.auth import safe_next

    return safe_next(target)


def _referring_page() -> str | None:
    """The page the form was on, if it was on this site."""
    if htmx:
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
    else:
        current = urlsplit(request.headers.get("Referer", ""))
    if current.netloc != request.host:
        return None
    return _safe_local(current.path + (f"?{current.query}" if current.query else ""))


def _page_to_retry() -> str:
    """Where the action can be tried again: its form's page, else the closest page."""
    args = request.view_args or {}
    endpoint = request.endpoint or ""
    if endpoint.startswith("patient.") and "token" in args:
        area = "patient.appointment" if request.path.startswith("/a/") else "patient.offer"
        return url_for(area, token=args["token"])
    from_form = _safe_local(request.form.get("next"))
    if from_form:
        return from_form
    if endpoint.startswith("staff.") and "slot_id" in args:
        return url_for("staff.slot", slot_id=args["slot_id"])
    if endpoint == "staff.login":
        return url_for("staff.home")
    return _referring_page() or (url_for("staff.home") if endpoint.startswith("staff.") else "/")


def _staff_page(back: str) -> dict[str, Any]:
    if request.endpoint == "staff.login":
        return {
            "message": "The sign-in page was open too long, so your details were not "
            "checked. Nothing was sent.",
            "advice": "Please sign in again.",
            "action_label": "Sign in again",
            "action_url": url_for("staff.login", next=_safe_local(request.form.get("next"))),
        }
    if not current_user.is_authenticated:
        return {
            "message": "You were signed out (in another tab, or after a while away), so "
            "that action was not carried out. Nothing was changed.",
            "advice": "Sign in again, then try once more.",
            "action_label": "Sign in again",
            "action_url": url_for("staff.login", next=back),
        }
    return {
        "message": "This page was open too long, so for your safety that action was not "
        "carried out. Nothing was changed.",
        "advice": "Go back to the page (it loads afresh) and try again.",
        "action_label": "Back to the page",
        "action_url": back,
    }


def session_expired_response(error: CSRFError) -> Response:
    """Answer a failed CSRF check on an HTML form or an htmx request."""
    back = _page_to_retry()
    if htmx:
        flash(HTMX_MESSAGE, "warning")
        target = _referring_page() or back
        if not current_user.is_authenticated and (request.endpoint or "").startswith("staff."):
            target = url_for("staff.login", next=target)
        response = make_response("", 400)
        response.headers["HX-Redirect"] = target
        return response
    if request.path.startswith(("/o/", "/a/")):
        from portal.web.patient import error_context

        html = render_template(
            "patient/session_expired.html",
            title=TITLE,
            action_url=back,
            action_label="Back to your appointment"
            if request.path.startswith("/a/")
            else "Back to your offer",
            error_page=True,
            **error_context(request.path),
        )
    else:
        html = render_template(
            "errors/session_expired.html", title=TITLE, error_page=True, **_staff_page(back)
        )
    return make_response(html, 400)
