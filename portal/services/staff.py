"""Staff accounts: creation, sign-in checks and the audit trail of sessions."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal.db import db, now_utc
from portal.models import StaffUser
from portal.models.enums import StaffRole
from portal.services.audit import SYSTEM, Action, Actor, record
from portal.services.passwords import (
    MIN_PASSWORD_LENGTH,
    hash_password,
    needs_rehash,
    verify_password,
)

#: Long enough for any passphrase, short enough that hashing it is no denial of service.
MAX_PASSWORD_LENGTH = 1024
MAX_NAME_LENGTH = 120
MAX_EMAIL_LENGTH = 254

# Deliberately simple: one @, no spaces, a dot in the domain. Delivery proves the rest.
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class InvalidStaffInput(ValueError):
    """The details for a staff account are unusable; the message says why."""


class StaffUserExists(InvalidStaffInput):
    """An account with that email already exists."""


def normalise_email(email: str) -> str:
    """Return the canonical form of an email address (trimmed, lower case)."""
    return email.strip().lower()


def validate_new_staff(email: str, name: str, role: str | StaffRole) -> tuple[str, str, StaffRole]:
    """Check the non-secret details of a new account; return them normalised."""
    email = normalise_email(email)
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL_RE.match(email):
        raise InvalidStaffInput(f"{email!r} is not a valid email address")
    name = name.strip()
    if not name:
        raise InvalidStaffInput("a name is required")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidStaffInput(f"the name is longer than {MAX_NAME_LENGTH} characters")
    try:
        staff_role = StaffRole(role)
    except ValueError:
        choices = ", ".join(r.value for r in StaffRole)
        raise InvalidStaffInput(f"role must be one of: {choices}") from None
    if email_taken(email):
        raise StaffUserExists(f"a staff user with email {email} already exists")
    return email, name, staff_role


def validate_password(password: str) -> None:
    """Refuse passwords that are too short or absurdly long."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidStaffInput(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidStaffInput(f"the password must be at most {MAX_PASSWORD_LENGTH} characters")


def email_taken(email: str) -> bool:
    """Return whether an account already uses this (normalised) email."""
    stmt = sa.select(StaffUser.id).where(StaffUser.email == normalise_email(email))
    return db.session.scalar(stmt) is not None


def create_staff(
    email: str, name: str, role: str | StaffRole, password: str, actor: Actor
) -> StaffUser:
    """Create an active staff account with an argon2id password hash (flushes, no commit)."""
    email, name, staff_role = validate_new_staff(email, name, role)
    validate_password(password)
    user = StaffUser(email=email, name=name, role=staff_role, password_hash=hash_password(password))
    try:
        # A savepoint: losing a race to the unique index must not spoil the caller's session.
        with db.session.begin_nested():
            db.session.add(user)
    except IntegrityError:
        raise StaffUserExists(f"a staff user with email {email} already exists") from None
    record(actor, Action.STAFF_CREATED, user, after={"name": name, "role": staff_role})
    return user


def find_by_email(email: str) -> StaffUser | None:
    """Return the account registered under ``email``, active or not."""
    stmt = sa.select(StaffUser).where(StaffUser.email == normalise_email(email))
    return db.session.scalar(stmt)


def authenticate(email: str, password: str) -> StaffUser | None:
    """Return the active account these credentials open, or None.

    Unknown emails, wrong passwords and inactive accounts cost the same argon2
    verification and look the same to the caller. A failure against an existing
    account is audited (without the email or password); a success upgrades an
    outdated hash, stamps ``last_login_at`` and audits the login.
    """
    user = find_by_email(email)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None:
        return None
    if not ok or not user.active:
        reason = "inactive" if ok else "bad_password"
        record(SYSTEM, Action.STAFF_LOGIN_FAILED, user, after={"reason": reason})
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    before = user.last_login_at
    user.last_login_at = now_utc()
    record(
        Actor.staff(user),
        Action.STAFF_LOGIN,
        user,
        before={"last_login_at": before},
        after={"last_login_at": user.last_login_at},
    )
    return user


def record_logout(user: StaffUser, reason: str) -> None:
    """Audit the end of ``user``'s session because it was idle, too old or invalid."""
    record(SYSTEM, Action.STAFF_LOGOUT, user, after={"reason": reason})


def end_all_sessions(user: StaffUser) -> None:
    """Make every session cookie issued to ``user`` so far worthless.

    The session id carries the account's epoch (see ``StaffUser.get_id``), so bumping
    it refuses cookies saved before now, on every device, though they are still signed.
    """
    user.session_epoch = StaffUser.session_epoch + 1  # in SQL: two at once both count
    db.session.flush()


def sign_out(user: StaffUser) -> None:
    """Sign ``user`` out everywhere: earlier cookies stop working; audited."""
    end_all_sessions(user)
    record(Actor.staff(user), Action.STAFF_LOGOUT, user, after={"reason": "signed_out"})


def change_password(user: StaffUser, password: str, actor: Actor) -> None:
    """Set a new password and end every earlier session of the account (flushes)."""
    validate_password(password)
    user.password_hash = hash_password(password)
    end_all_sessions(user)
    record(actor, Action.STAFF_PASSWORD_CHANGED, user, after={"sessions_ended": True})


def set_active(user: StaffUser, active: bool, actor: Actor) -> None:
    """Activate or deactivate an account; either way its earlier sessions end."""
    before = {"active": user.active}
    user.active = active
    end_all_sessions(user)
    action = Action.STAFF_ACTIVATED if active else Action.STAFF_DEACTIVATED
    record(actor, action, user, before=before, after={"active": active})
