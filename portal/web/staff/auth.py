"""Staff sign-in and sign-out, the session's lifetime rules and sign-in throttling.

Sessions: a sign-in starts a fresh session (new cookie contents and CSRF token).
It ends after ``STAFF_IDLE_MINUTES`` without a request, or ``STAFF_SESSION_HOURS``
after sign-in, whichever comes first. Requests carrying ``X-Background-Refresh: 1``
(htmx polling) do not count as activity. The user id in the session includes the
account's ``session_epoch``, so bumping it ends every session of that account: signing
out, a password change and (de)activation do, so a cookie saved before them — still
validly signed — opens nothing.

Throttling (``LoginThrottle``): attempts are counted in the rate-limit storage (Redis)
per account *and* address, per address, and — for browsers and networks the account
never signed in from — per account, all as keyed hashes (whether or not the account
exists). Counters are incremented atomically *before* the password is checked, so
parallel guesses cannot slip past them. Nobody can lock a colleague out by knowing
their e-mail: the real user's browser (device cookie) and usual address are only
limited by their own mistakes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import (
    Response,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import RateLimitItem, parse
from limits.errors import StorageError
from redis.exceptions import RedisError

from portal.clock import system_seconds
from portal.db import db, now_utc
from portal.extensions import htmx, limiter, login_manager
from portal.models import StaffUser
from portal.queue import redis_connection
from portal.services import staff as staff_service
from portal.web.staff.blueprint import PUBLIC_ENDPOINTS, bp
from portal.web.staff.forms import LoginForm

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "Email or password is incorrect."
LOCKED_OUT = "Too many sign-in attempts. Please wait a while and try again."
LOGIN_AT = "staff_login_at"
SEEN_AT = "staff_seen_at"
PASSIVE_HEADER = "X-Background-Refresh"


@bp.record_once
def _configure_login_manager(state: object) -> None:
    login_manager.login_view = "staff.login"
    login_manager.user_loader(load_user)
    login_manager.unauthorized_handler(_unauthorized)


def load_user(user_id: str) -> StaffUser | None:
    """Return the active account for an ``"id:epoch"`` session id whose epoch is current."""
    raw_id, sep, raw_epoch = user_id.partition(":")
    if not (sep and raw_id.isdigit() and raw_epoch.isdigit()):
        return None
    user = db.session.get(StaffUser, int(raw_id))
    if user is None or not user.active or user.session_epoch != int(raw_epoch):
        return None
    return user


def safe_next(target: str | None) -> str | None:
    """Return ``target`` if it is a local path (never another host), else None."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if any(ch in target for ch in "\\\r\n\t") or not target.isprintable():
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    if parts.path in (url_for("staff.login"), url_for("staff.logout")):
        return None
    return target


def _return_path() -> str | None:
    """Return where to come back after signing in: the page, not an htmx fragment."""
    if htmx:
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        if current.netloc != request.host:
            return None
        return safe_next(current.path + (f"?{current.query}" if current.query else ""))
    if request.method != "GET":
        return None
    query = request.query_string.decode("utf-8", "replace")
    return safe_next(request.path + (f"?{query}" if query else ""))


def _current_staff() -> StaffUser:
    return current_user._get_current_object()  # the model behind Flask-Login's proxy


def _to_login(next_path: str | None) -> Response:
    """Redirect to the login page; htmx gets ``HX-Redirect`` so a whole page loads."""
    target = url_for("staff.login", next=next_path) if next_path else url_for("staff.login")
    if htmx:
        response = make_response("", 401)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


def _unauthorized() -> Response:
    return _to_login(_return_path())


def start_session(user: StaffUser) -> None:
    """Sign ``user`` in on a fresh session: nothing from before survives, new CSRF token."""
    session.clear()
    g.pop("csrf_token", None)  # Flask-WTF caches the request's token here
    login_user(user)
    session.permanent = True
    now = int(now_utc().timestamp())
    session[LOGIN_AT] = now
    session[SEEN_AT] = now


def end_session() -> None:
    """Sign out and drop everything the session held."""
    logout_user()
    session.clear()
    g.pop("csrf_token", None)


def _why_session_ends() -> tuple[str, str | None] | None:
    """Return (audit reason, message for the person) if the session is over, else None."""
    config = current_app.config
    now = now_utc().timestamp()
    login_at, seen_at = session.get(LOGIN_AT), session.get(SEEN_AT)
    if not isinstance(login_at, int | float) or not isinstance(seen_at, int | float):
        return "invalid", None
    hours, minutes = config["STAFF_SESSION_HOURS"], config["STAFF_IDLE_MINUTES"]
    if now - login_at > hours * 3600:
        return "expired", f"Your session ended after {hours} hours. Please sign in again."
    if now - seen_at > minutes * 60:
        return "idle", f"You were signed out after {minutes} minutes of inactivity."
    return None


@bp.before_request
def _require_staff_session() -> ResponseReturnValue | None:
    """Send anonymous or expired sessions to the login page (public pages excepted)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    return enforce_session()


def enforce_session() -> ResponseReturnValue | None:
    """Require a live staff session; end it when idle or too old, else mark activity."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    ending = _why_session_ends()
    if ending is None:
        if not request.headers.get(PASSIVE_HEADER):
            session[SEEN_AT] = int(now_utc().timestamp())
        return None
    reason, message = ending
    staff_service.record_logout(_current_staff(), reason=reason)
    db.session.commit()
    end_session()
    if message:
        flash(message, "info")
    return _to_login(_return_path())


class LoginThrottle:
    """Throttles sign-in guesses without letting anyone lock a staff member out.

    Knowing a colleague's e-mail must not be enough to keep them out (OWASP's device
    cookies). So there is no hard lock per account; instead, in the limiter's storage:

    - per address: failed attempts from one client address, whatever the account;
    - per account and address: attempts at one account from one address — a guesser's
      own address runs out, not the real user's;
    - per account, untrusted only: attempts from browsers without this account's device
      cookie *and* from addresses it never signed in from, so a guess spread over many
      addresses slows down while the real user's browser and usual network go through.

    If the storage is unreachable the throttle lets attempts through (and logs it):
    argon2 still makes guessing slow, and staff can still sign in during an outage.
    """

    def __init__(self, email: str, address: str) -> None:
        config = current_app.config
        secret = str(current_app.secret_key).encode()
        # Keyed hashes: the storage never holds the e-mail or the address itself.
        self.account = _keyed(secret, staff_service.normalise_email(email))
        place = _keyed(secret, address)
        self.per_address: RateLimitItem = parse(config["LOGIN_LIMIT_PER_IP"])
        self.per_pair: RateLimitItem = parse(config["LOGIN_LIMIT_PER_ACCOUNT_ADDRESS"])
        self.per_account: RateLimitItem = parse(config["LOGIN_LIMIT_PER_ACCOUNT"])
        self.address_ids = ("staff-login-ip", address)
        self.pair_ids = ("staff-login-pair", f"{self.account}:{place}")
        self.account_ids = ("staff-login-account", self.account)
        self.known_key = f"staff-login-known:{self.account}:{place}"

    def trusted(self) -> bool:
        """This browser holds the account's device cookie, or this address signed in before."""
        if read_device_cookie() == self.account:
            return True
        try:
            return bool(redis_connection().exists(self.known_key))
        except RedisError:
            return False

    def claim(self) -> int | None:
        """Count an attempt; return seconds to wait if this attempt must not be tried."""
        if not limiter.enabled:
            return None
        strategy = limiter.limiter
        try:
            if not strategy.test(self.per_address, *self.address_ids):
                return self._wait(self.per_address, self.address_ids)
            # hit, not test: the increment is atomic, so parallel guesses cannot exceed it.
            if not strategy.hit(self.per_pair, *self.pair_ids):
                return self._wait(self.per_pair, self.pair_ids)
            if not self.trusted() and not strategy.hit(self.per_account, *self.account_ids):
                return self._wait(self.per_account, self.account_ids)
        except (RedisError, StorageError):
            log.error("Login throttle storage unavailable; attempt allowed", exc_info=True)
        return None

    def failed(self) -> None:
        """Count a failed attempt against the client address."""
        self._safely(lambda: limiter.limiter.hit(self.per_address, *self.address_ids))

    def succeeded(self, response: Response) -> None:
        """Forget the account's counts, trust this address, give the browser a device cookie."""
        self._safely(lambda: limiter.limiter.clear(self.per_pair, *self.pair_ids))
        self._safely(lambda: limiter.limiter.clear(self.per_account, *self.account_ids))
        self._safely(lambda: redis_connection().set(self.known_key, 1, ex=KNOWN_ADDRESS_SECONDS))
        set_device_cookie(response, self.account)

    def _wait(self, item: RateLimitItem, ids: tuple[str, str]) -> int:
        reset_at = limiter.limiter.get_window_stats(item, *ids).reset_time
        return max(1, math.ceil(reset_at - system_seconds()))

    def _safely(self, action: Callable[[], object]) -> None:
        if not limiter.enabled:
            return
        try:
            action()
        except (RedisError, StorageError):
            log.error("Login throttle storage unavailable", exc_info=True)


DEVICE_COOKIE = "portal_device"
DEVICE_COOKIE_SECONDS = 180 * 24 * 3600
KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600


def _keyed(secret: bytes, value: str) -> str:
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:32]


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="staff-device")


def read_device_cookie() -> str | None:
    """The account (keyed hash) whose device cookie this browser holds, if valid."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        account = _device_serializer().loads(raw, max_age=DEVICE_COOKIE_SECONDS)
    except BadSignature:
        return None
    return account if isinstance(account, str) else None


def set_device_cookie(response: Response, account: str) -> None:
    """Remember that this browser signed in to ``account`` (it proves nothing else)."""
    response.set_cookie(
        DEVICE_COOKIE,
        _device_serializer().dumps(account),
        max_age=DEVICE_COOKIE_SECONDS,
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
        path=url_for("staff.login"),
    )


def _render_login(
    form: LoginForm, status: int, error: str | None = None, retry_after: int | None = None
) -> Response:
    html = render_template("staff/login.html", form=form, error=error, retry_after=retry_after)
    return make_response(html, status)


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Show the sign-in form; check the credentials and start a session."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next")) or url_for("staff.home"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
        return _render_login(form, 200)
    if not form.validate_on_submit():
        return _render_login(form, 422)

    throttle = LoginThrottle(form.email.data or "", get_remote_address() or "unknown")
    wait = throttle.claim()
    if wait is not None:
        response = _render_login(form, 429, LOCKED_OUT, retry_after=wait)
        response.headers["Retry-After"] = str(wait)
        return response

    user = staff_service.authenticate(form.email.data or "", form.password.data or "")
    db.session.commit()  # the audit event of a failure as much as a success
    if user is None:
        throttle.failed()
        return _render_login(form, 200, BAD_CREDENTIALS)
    start_session(user)
    response = redirect(safe_next(form.next.data) or url_for("staff.home"))
    throttle.succeeded(response)
    return response


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End this session and every earlier one of the account; back to the sign-in page."""
    staff_service.sign_out(_current_staff())
    db.session.commit()
    end_session()
    flash("You have signed out.", "success")
    return _to_login(None)
