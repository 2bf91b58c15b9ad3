"""Cancellation policies per service category: data, with the guide's values as defaults.

A ``CancellationPolicy`` row per category (staff admins edit them; migration 0100
seeded the guide's). A category without a row uses ``DEFAULTS`` (the same values), and
an unknown category the injectables policy, the strictest. ``update_policy`` is the one
way to change a row: it parses the fee text ("$50" or "50%"), keeps the tiers ordered
(full-charge hours ≤ notice hours) and writes an audit event.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal.db import db, now_utc
from portal.models import CancellationPolicy
from portal.models.enums import FeeKind
from portal.services.audit import Action, Actor, record
from portal.services.errors import DomainError
from portal.services.money import Fee, FeeParseError, fee_text, parse_fee

#: Longest grace and notice a policy may state (a typo guard: 10,000 hours is a year).
MAX_GRACE_MINUTES = 24 * 60
MAX_NOTICE_HOURS = 24 * 30


@dataclass(frozen=True)
class Policy:
    category: str
    grace_minutes: int
    grace_free: bool
    late_fee: Fee
    notice_hours: int
    full_charge_hours: int

    @property
    def late_fee_text(self) -> str:
        return fee_text(self.late_fee.kind, self.late_fee.value)


def _policy(category: str, grace: int, fee: str, notice: int, full: int) -> Policy:
    return Policy(category, grace, True, parse_fee(fee), notice, full)


#: The implementation guide's values (seed §5), with full-charge hours below notice hours
#: so that the late fee can apply (equal hours would make that tier unreachable).
DEFAULTS: dict[str, Policy] = {
    "injectables": _policy("injectables", 15, "50%", 24, 4),
    "laser": _policy("laser", 10, "50%", 24, 4),
    "facial": _policy("facial", 15, "50%", 12, 2),
}
FALLBACK_CATEGORY = "injectables"


def policy_for(category: str) -> Policy:
    """The cancellation policy for a service category (its row, else the default)."""
    row = db.session.scalar(
        sa.select(CancellationPolicy).where(CancellationPolicy.category == category)
    )
    if row is None:
        default = DEFAULTS.get(category, DEFAULTS[FALLBACK_CATEGORY])
        return Policy(
            category,
            default.grace_minutes,
            default.grace_free,
            default.late_fee,
            default.notice_hours,
            default.full_charge_hours,
        )
    return Policy(
        row.category,
        row.grace_minutes,
        row.grace_free,
        Fee(row.late_fee_kind, row.late_fee_value),
        row.notice_hours,
        row.full_charge_hours,
    )


class InvalidPolicy(DomainError):
    default_code = "invalid_policy"


def validate(
    *, grace_minutes: int, late_fee: str, notice_hours: int, full_charge_hours: int
) -> Fee:
    """Check a policy's numbers and parse its fee; raise ``InvalidPolicy`` saying why."""
    try:
        fee = parse_fee(late_fee)
    except FeeParseError as exc:
        raise InvalidPolicy(str(exc), code="invalid_fee") from None
    if not 0 <= grace_minutes <= MAX_GRACE_MINUTES:
        raise InvalidPolicy(f"Grace minutes must be between 0 and {MAX_GRACE_MINUTES}.")
    if not 0 <= full_charge_hours <= notice_hours <= MAX_NOTICE_HOURS:
        raise InvalidPolicy(
            "Hours must satisfy 0 ≤ full-charge hours ≤ notice hours ≤ "
            f"{MAX_NOTICE_HOURS}: less notice than full-charge hours costs the full price, "
            "between the two the late fee, and notice hours or more nothing."
        )
    return fee


def update_policy(
    category: str,
    *,
    grace_minutes: int,
    grace_free: bool,
    late_fee: str,
    notice_hours: int,
    full_charge_hours: int,
    actor: Actor,
) -> CancellationPolicy:
    """Create or change a category's policy (validated, audited)."""
    fee = validate(
        grace_minutes=grace_minutes,
        late_fee=late_fee,
        notice_hours=notice_hours,
        full_charge_hours=full_charge_hours,
    )
    before = policy_for(category)
    values = {
        "grace_minutes": grace_minutes,
        "grace_free": grace_free,
        "late_fee_kind": FeeKind(fee.kind),
        "late_fee_value": fee.value,
        "notice_hours": notice_hours,
        "full_charge_hours": full_charge_hours,
        "updated_at": now_utc(),
    }
    row_id = db.session.scalar(
        insert(CancellationPolicy)
        .values(category=category, created_at=now_utc(), **values)
        .on_conflict_do_update(index_elements=[CancellationPolicy.category], set_=values)
        .returning(CancellationPolicy.id)
    )
    row = db.session.get(CancellationPolicy, row_id)
    db.session.refresh(row)
    record(
        actor,
        Action.CANCELLATION_POLICY_UPDATED,
        row,
        before=_summary(before),
        after=_summary(policy_for(category)),
    )
    return row


def _summary(policy: Policy) -> dict[str, object]:
    return {
        "grace_minutes": policy.grace_minutes,
        "grace_free": policy.grace_free,
        "late_fee": policy.late_fee_text,
        "notice_hours": policy.notice_hours,
        "full_charge_hours": policy.full_charge_hours,
    }
