"""Admins managing staff accounts: invite, set-password links, roles, deactivation.

An invited account has no usable password until its owner opens the link. The link is
signed, expires after ``LINK_HOURS`` and names a fingerprint of the account's current
password hash, so it works once: setting a password changes the hash and every earlier
link stops working (as do earlier sessions, see ``staff.change_password``).
"""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from portal.db import db
from portal.models import StaffUser
from portal.models.enums import StaffRole
from portal.services import staff
from portal.services.audit import Action, Actor, record
from portal.services.errors import Conflict, DomainError

LINK_HOURS = 72
_INVITED = "!invited:"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="staff-password-link")


def _fingerprint(user: StaffUser) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:24]


def is_invited(user: StaffUser) -> bool:
    """Whether the account still waits for its owner to choose a password."""
    return user.password_hash.startswith(_INVITED)


def invite(email: str, name: str, role: str, actor: Actor) -> StaffUser:
    """Create an account without a usable password (its owner sets one from the link)."""
    try:
        email, name, staff_role = staff.validate_new_staff(email, name, role)
    except staff.InvalidStaffInput as exc:
        raise DomainError(str(exc).capitalize() + ".", code="invalid_staff") from None
    user = StaffUser(
        email=email,
        name=name,
        role=staff_role,
        password_hash=_INVITED + secrets.token_hex(16),  # no password matches this
    )
    db.session.add(user)
    db.session.flush()
    record(actor, Action.STAFF_INVITED, user, after={"name": name, "role": staff_role})
    return user


def password_link_token(user: StaffUser) -> str:
    """Sign a link that lets the account's owner set a password, once."""
    return _serializer().dumps([user.id, _fingerprint(user)])


def user_for_token(token: str) -> StaffUser | None:
    """The active account a set-password link is for, if it is still valid."""
    try:
        user_id, fingerprint = _serializer().loads(token, max_age=LINK_HOURS * 3600)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(user_id, int) or not isinstance(fingerprint, str):
        return None
    user = db.session.get(StaffUser, user_id)
    if user is None or not user.active or _fingerprint(user) != fingerprint:
        return None
    return user


def set_password_from_link(user: StaffUser, password: str) -> None:
    """The owner chose a password: the link is spent and earlier sessions end."""
    try:
        staff.change_password(user, password, Actor.staff(user))
    except staff.InvalidStaffInput as exc:
        raise DomainError(str(exc).capitalize() + ".", code="invalid_password") from None


def _other_active_admins(user: StaffUser) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(StaffUser)
        .where(
            StaffUser.role == StaffRole.ADMIN,
            StaffUser.active.is_(True),
            StaffUser.id != user.id,
        )
    )


def set_role(user: StaffUser, role: str, actor: Actor) -> bool:
    """Change the account's role (never leaving the clinic without an admin)."""
    try:
        new_role = StaffRole(role)
    except ValueError:
        raise DomainError("Choose staff or admin.", code="invalid_role") from None
    if user.role == new_role:
        return False
    if user.role == StaffRole.ADMIN and _other_active_admins(user) == 0:
        raise Conflict("This is the only admin: make someone else admin first.", code="last_admin")
    before = user.role
    user.role = new_role
    record(
        actor, Action.STAFF_ROLE_CHANGED, user, before={"role": before}, after={"role": new_role}
    )
    return True


def set_active(user: StaffUser, active: bool, actor: Actor) -> bool:
    """Deactivate (ending every session) or reactivate an account; not your own."""
    if user.active == active:
        return False
    if not active and actor.staff_id == user.id:
        raise Conflict("You cannot deactivate your own account.", code="own_account")
    if not active and user.role == StaffRole.ADMIN and _other_active_admins(user) == 0:
        raise Conflict("This is the only admin: make someone else admin first.", code="last_admin")
    staff.set_active(user, active, actor)
    return True


def all_staff() -> list[StaffUser]:
    return list(
        db.session.scalars(sa.select(StaffUser).order_by(StaffUser.active.desc(), StaffUser.name))
    )
