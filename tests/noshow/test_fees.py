"""Cancellation fees: every tier at every edge, the rounding, the fee text (SPEC §5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.models import Appointment
from portal.models.enums import AppointmentSource, FeeKind, FeeTier
from portal.services.audit import SYSTEM
from portal.services.cancellation import quote
from portal.services.cancellation_policy import (
    DEFAULTS,
    InvalidPolicy,
    policy_for,
    update_policy,
    validate,
)
from portal.services.money import Fee, FeeParseError, discounted, parse_fee, percent_of
from tests import factories as f

pytestmark = pytest.mark.usefixtures("app")

START = datetime(2026, 12, 10, 17, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def _appointment(
    *,
    category: str = "injectables",
    price: int = 40000,
    source: AppointmentSource = AppointmentSource.WAITLIST,
    booked_at: datetime,
    start: datetime = START,
    zone: str = "America/New_York",
    discount: int | None = None,
) -> Appointment:
    service = f.service(category=category, price_cents=price)
    practitioner = f.practitioner(location=f.location(timezone=zone))
    slot = f.slot(start_at=start, service=service, practitioner=practitioner)
    return f.appointment(slot=slot, source=source, booked_at=booked_at, discount_percent=discount)


# injectables (seeded): grace 15 min (waitlist/alternative), free ≥ 24 h, 50% ≥ 4 h, else full.
LONG_AGO = START - timedelta(days=10)


@pytest.mark.parametrize(
    ("source", "booked_at", "now", "tier", "fee"),
    [
        # grace edge: booked 2 h before the start, cancelled at +15:00 vs +15:01
        (
            AppointmentSource.WAITLIST,
            START - timedelta(hours=2),
            START - timedelta(hours=2) + timedelta(minutes=15),
            FeeTier.GRACE,
            0,
        ),
        (
            AppointmentSource.WAITLIST,
            START - timedelta(hours=2),
            START - timedelta(hours=2) + timedelta(minutes=15) + S,
            FeeTier.FULL,
            40000,
        ),
        (
            AppointmentSource.ALTERNATIVE,
            START - timedelta(hours=5),
            START - timedelta(hours=5) + timedelta(minutes=15),
            FeeTier.GRACE,
            0,
        ),
        (
            AppointmentSource.ALTERNATIVE,
            START - timedelta(hours=5),
            START - timedelta(hours=5) + timedelta(minutes=16),
            FeeTier.LATE,
            20000,
        ),
        # waitlist vs staff booking: staff and API bookings have no grace period
        (
            AppointmentSource.STAFF,
            START - timedelta(hours=2),
            START - timedelta(hours=2) + timedelta(minutes=1),
            FeeTier.FULL,
            40000,
        ),
        (
            AppointmentSource.API,
            START - timedelta(hours=5),
            START - timedelta(hours=5) + timedelta(minutes=1),
            FeeTier.LATE,
            20000,
        ),
        # notice edge: exactly 24 h is free, a second less is the late fee
        (AppointmentSource.STAFF, LONG_AGO, START - timedelta(hours=24), FeeTier.NOTICE, 0),
        (AppointmentSource.STAFF, LONG_AGO, START - timedelta(hours=24) + S, FeeTier.LATE, 20000),
        (AppointmentSource.STAFF, LONG_AGO, START - timedelta(days=3), FeeTier.NOTICE, 0),
        # full-charge edge: exactly 4 h is still the late fee, a second less is full
        (AppointmentSource.STAFF, LONG_AGO, START - timedelta(hours=4), FeeTier.LATE, 20000),
        (AppointmentSource.STAFF, LONG_AGO, START - timedelta(hours=4) + S, FeeTier.FULL, 40000),
        (AppointmentSource.STAFF, LONG_AGO, START - timedelta(minutes=1), FeeTier.FULL, 40000),
        # a waitlist booking long ago is past its grace: the hours decide
        (AppointmentSource.WAITLIST, LONG_AGO, START - timedelta(hours=30), FeeTier.NOTICE, 0),
        (AppointmentSource.WAITLIST, LONG_AGO, START - timedelta(hours=10), FeeTier.LATE, 20000),
    ],
)
def test_fee_tier_at_each_edge(
    source: AppointmentSource, booked_at: datetime, now: datetime, tier: FeeTier, fee: int
) -> None:
    result = quote(_appointment(source=source, booked_at=booked_at), now)
    assert (result.tier, result.fee_cents) == (tier, fee)


# DST: New York springs forward on Sunday 2027-03-14 at 2:00. A 10:00 EDT slot that
# Sunday is 23 real hours after 10:00 EST on Saturday: that is less than 24 hours' notice.
DST_START = datetime(2027, 3, 14, 14, 0, tzinfo=UTC)  # 10:00 EDT


@pytest.mark.parametrize(
    ("now", "tier"),
    [
        (datetime(2027, 3, 13, 14, 0, tzinfo=UTC), FeeTier.NOTICE),  # Sat 9:00 EST: 24 h
        (datetime(2027, 3, 13, 15, 0, tzinfo=UTC), FeeTier.LATE),  # Sat 10:00 EST: 23 h
        (datetime(2027, 3, 14, 10, 0, tzinfo=UTC), FeeTier.LATE),  # Sun 6:00 EDT: exactly 4 h
        (datetime(2027, 3, 14, 10, 0, 1, tzinfo=UTC), FeeTier.FULL),
    ],
)
def test_hours_of_notice_are_elapsed_hours_across_a_dst_weekend(
    now: datetime, tier: FeeTier
) -> None:
    appointment = _appointment(source=AppointmentSource.STAFF, booked_at=LONG_AGO, start=DST_START)
    assert quote(appointment, now).tier == tier


def test_facial_policy_uses_its_own_hours() -> None:
    appointment = _appointment(
        category="facial", price=25000, source=AppointmentSource.STAFF, booked_at=LONG_AGO
    )
    assert quote(appointment, START - timedelta(hours=12)).tier == FeeTier.NOTICE
    assert quote(appointment, START - timedelta(hours=11)).fee_cents == 12500
    assert quote(appointment, START - timedelta(hours=1)).fee_cents == 25000


def test_half_of_333_33_is_16667_cents_rounded_half_up() -> None:
    appointment = _appointment(price=33333, source=AppointmentSource.STAFF, booked_at=LONG_AGO)
    assert quote(appointment, START - timedelta(hours=10)).fee_cents == 16667


def test_a_fixed_late_fee_never_exceeds_the_price() -> None:
    update_policy(
        "laser",
        grace_minutes=10,
        grace_free=True,
        late_fee="$50",
        notice_hours=24,
        full_charge_hours=4,
        actor=SYSTEM,
    )
    cheap = _appointment(
        category="laser", price=3000, source=AppointmentSource.STAFF, booked_at=LONG_AGO
    )
    dear = _appointment(
        category="laser", price=30000, source=AppointmentSource.STAFF, booked_at=LONG_AGO
    )
    assert quote(cheap, START - timedelta(hours=10)).fee_cents == 3000
    assert quote(dear, START - timedelta(hours=10)).fee_cents == 5000


def test_equal_notice_and_full_charge_hours_leave_no_late_tier() -> None:
    update_policy(
        "facial",
        grace_minutes=15,
        grace_free=True,
        late_fee="50%",
        notice_hours=12,
        full_charge_hours=12,
        actor=SYSTEM,
    )
    appointment = _appointment(
        category="facial", price=20000, source=AppointmentSource.STAFF, booked_at=LONG_AGO
    )
    assert quote(appointment, START - timedelta(hours=12)).tier == FeeTier.NOTICE
    assert quote(appointment, START - timedelta(hours=12) + S).tier == FeeTier.FULL


def test_the_fee_is_on_the_discounted_price() -> None:
    appointment = _appointment(
        price=33333, source=AppointmentSource.STAFF, booked_at=LONG_AGO, discount=20
    )
    result = quote(appointment, START - timedelta(hours=1))
    assert result.price_cents == 33333 - 6667 == 26666
    assert result.fee_cents == 26666


@pytest.mark.parametrize(
    ("cents", "percent", "expected"),
    [
        (33333, 50, 16667),
        (1, 50, 1),
        (3, 50, 2),
        (0, 50, 0),
        (40000, 50, 20000),
        (99, 20, 20),
        (101, 20, 20),
        (12345, 0, 0),
        (12345, 100, 12345),
    ],
)
def test_percent_of_rounds_half_up(cents: int, percent: int, expected: int) -> None:
    assert percent_of(cents, percent) == expected


def test_discounted_rounds_the_discount_half_up() -> None:
    assert discounted(33333, 20) == 26666 and discounted(1000, None) == 1000


@pytest.mark.parametrize(
    ("text", "fee"),
    [
        ("$50", Fee(FeeKind.FIXED, 5000)),
        ("$12.50", Fee(FeeKind.FIXED, 1250)),
        (" $1,000 ", Fee(FeeKind.FIXED, 100000)),
        ("$0", Fee(FeeKind.FIXED, 0)),
        ("50%", Fee(FeeKind.PERCENT, 50)),
        ("100%", Fee(FeeKind.PERCENT, 100)),
        ("0%", Fee(FeeKind.PERCENT, 0)),
        ("15 %", Fee(FeeKind.PERCENT, 15)),
    ],
)
def test_fee_text_parses(text: str, fee: Fee) -> None:
    assert parse_fee(text) == fee


@pytest.mark.parametrize(
    "text",
    [
        "",
        "50",
        "abc",
        "$",
        "$-5",
        "-$5",
        "$5.5",
        "$5.555",
        "150%",
        "50.5%",
        "%50",
        "$1e3",
        "NaN",
        "$50%",
        "fifty dollars",
        "$1,00",
        "$100,001",
        "٥٠%",
        "$５0",
    ],
)
def test_nonsense_fee_text_is_refused(text: str) -> None:
    with pytest.raises(FeeParseError):
        parse_fee(text)


def test_policies_are_seeded_with_the_guides_values() -> None:
    for category, grace, notice in (("injectables", 15, 24), ("laser", 10, 24), ("facial", 15, 12)):
        policy = policy_for(category)
        assert (policy.grace_minutes, policy.notice_hours) == (grace, notice)
        assert policy.late_fee == Fee(FeeKind.PERCENT, 50)
        assert policy == DEFAULTS[category]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"late_fee": "fifty"}, "invalid_fee"),
        ({"notice_hours": 4, "full_charge_hours": 24}, "invalid_policy"),
        ({"grace_minutes": -1}, "invalid_policy"),
        ({"notice_hours": 100000}, "invalid_policy"),
    ],
)
def test_invalid_policies_are_refused(fields: dict, code: str) -> None:
    values = {"grace_minutes": 15, "late_fee": "50%", "notice_hours": 24, "full_charge_hours": 4}
    with pytest.raises(InvalidPolicy) as exc:
        validate(**(values | fields))
    assert exc.value.code == code
