"""The dashboard's figures against a small data set computed by hand.

The range is Monday 2 to Sunday 15 November 2026 (after the DST change), local days:
Los Angeles is UTC-8 and New York UTC-5 throughout. Rows just outside the range in
UTC but inside it locally (23:30 in Los Angeles is 07:30 UTC the next day), and the
reverse, check that every figure counts a row on its own clinic's local day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from portal.db import db
from portal.models import (
    Charge,
    ChargeEntry,
    Location,
    Notification,
    NotificationAttempt,
    Patient,
)
from portal.models.enums import (
    AppointmentSource,
    AppointmentStatus,
    AttemptStatus,
    ChargeKind,
    ChargeStatus,
    FeeTier,
    NotificationStatus,
    OfferMode,
    OfferStatus,
    PaymentProviderName,
    Purpose,
    SlotStatus,
    WaitlistStatus,
)
from portal.services import analytics
from tests import factories as f

pytestmark = pytest.mark.usefixtures("app")

FROM, TO = date(2026, 11, 2), date(2026, 11, 15)
WEEK1, WEEK2 = date(2026, 11, 2), date(2026, 11, 9)


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@dataclass
class Clinic:
    la: Location
    ny: Location


def _message(
    patient: Patient,
    purpose: Purpose,
    at: datetime,
    status: NotificationStatus,
    attempts: list[tuple[str, AttemptStatus]],
    **links: int,
) -> Notification:
    n = Notification(
        patient_id=patient.id,
        purpose=purpose,
        status=status,
        dedupe_key=f"{purpose}:{patient.id}:{at.isoformat()}",
        created_at=at,
        updated_at=at,
        **links,
    )
    db.session.add(n)
    db.session.flush()
    for channel, status_ in attempts:
        db.session.add(
            NotificationAttempt(
                notification_id=n.id,
                patient_id=patient.id,
                purpose=purpose,
                channel=channel,
                status=status_,
                created_at=at,
                updated_at=at,
            )
        )
    db.session.flush()
    return n


def _charge(patient: Patient, kind: ChargeKind, cents: int, at: datetime, steps, **link) -> None:
    charge = Charge(
        patient_id=patient.id,
        kind=kind,
        amount_cents=cents,
        idempotency_key=f"{kind}:{at.isoformat()}",
        created_at=at,
        **link,
    )
    db.session.add(charge)
    db.session.flush()
    for n, (status, amount) in enumerate(steps):
        db.session.add(
            ChargeEntry(
                charge_id=charge.id,
                status=status,
                amount_cents=amount,
                provider=PaymentProviderName.DESK,
                idempotency_key=f"{charge.id}:{n}",
                created_at=at,
            )
        )
    db.session.flush()


@pytest.fixture
def clinic() -> Clinic:
    la = f.location(name="LA", timezone="America/Los_Angeles")
    ny = f.location(name="NY", timezone="America/New_York")
    dr_la, dr_ny = f.practitioner(location=la), f.practitioner(location=ny)
    big = f.service(price_cents=40000)
    small = f.service(price_cents=20000)
    p = [f.patient(home_location_id=la.id) for _ in range(7)]

    def slot(dr, service, start: datetime, opened: datetime | None, **kw):
        return f.slot(practitioner=dr, service=service, start_at=start, opened_at=opened, **kw)

    def appt(s, patient, source, booked, status=AppointmentStatus.BOOKED, **kw):
        return f.appointment(
            slot=s, patient=patient, source=source, booked_at=booked, status=status, **kw
        )

    def offer(s, patient, status, wave, mode, at):
        return f.offer(
            slot=s,
            entry=f.waitlist_entry(patient=patient, slot=s, status=WaitlistStatus.CANCELLED),
            status=status,
            wave=wave,
            mode=mode,
            created_at=at,
        )

    # A: LA, released Mon 2 Nov 09:00 local, filled from the waitlist 30 minutes later.
    a = slot(dr_la, big, utc(5, 18), utc(2, 17))
    a_appt = appt(a, p[0], AppointmentSource.WAITLIST, utc(2, 17, 30), AppointmentStatus.COMPLETED)
    a1 = offer(a, p[0], OfferStatus.ACCEPTED, 1, OfferMode.WAVES, utc(2, 17, 5))
    a2 = offer(a, p[1], OfferStatus.DECLINED, 1, OfferMode.WAVES, utc(2, 17, 5))
    a3 = offer(a, p[2], OfferStatus.WITHDRAWN, 1, OfferMode.WAVES, utc(2, 17, 5))
    # B: LA, released Sun 15 Nov 23:30 local (07:30 UTC on the 16th); an alternative
    # booked it 30 minutes later.
    b = slot(dr_la, small, utc(17, 18), utc(16, 7, 30))
    b_appt = appt(b, p[3], AppointmentSource.ALTERNATIVE, utc(16, 8))
    # C: NY, released Mon 9 Nov 10:00, staff booked it 90 minutes later; a no-show.
    c = slot(dr_ny, big, utc(10, 15), utc(9, 15), status=SlotStatus.CLOSED)
    c_appt = appt(c, p[4], AppointmentSource.STAFF, utc(9, 16, 30), AppointmentStatus.NO_SHOW)
    c1 = offer(c, p[3], OfferStatus.EXPIRED, 1, OfferMode.SEQUENTIAL, utc(9, 15, 5))
    c2 = offer(c, p[4], OfferStatus.DECLINED, 2, OfferMode.SEQUENTIAL, utc(9, 15, 40))
    # D: LA, released Tue 10 Nov, still open; one offer pending, one lapsed late in the chain
    # (a staff offer: no mode) and never sent.
    d = slot(dr_la, big, utc(12, 18), utc(10, 18))
    offer(d, p[5], OfferStatus.PENDING, 1, OfferMode.BROADCAST, utc(10, 18, 5))
    offer(d, p[6], OfferStatus.EXPIRED, 5, None, utc(10, 18, 5))
    # E: LA, released Sun 1 Nov 23:30 local (07:30 UTC on the 2nd): outside the range.
    e = slot(dr_la, big, utc(3, 18), utc(2, 7, 30))
    appt(e, p[5], AppointmentSource.WAITLIST, utc(2, 8), AppointmentStatus.CONFIRMED)
    offer(e, p[5], OfferStatus.ACCEPTED, 1, OfferMode.WAVES, utc(2, 7, 35))
    # F: NY, reopened Tue 3 Nov after a late cancellation; its old booking predates that.
    f_ = slot(dr_ny, small, utc(4, 15), utc(3, 15))
    f_appt = appt(
        f_,
        p[6],
        AppointmentSource.STAFF,
        utc(1, 15),
        AppointmentStatus.CANCELLED,
        cancelled_by_patient=True,
        cancellation_tier=FeeTier.LATE,
    )
    # G: never released, starts Sun 15 Nov 23:30 LA; checked in.
    g = slot(dr_la, small, utc(16, 7, 30), None)
    appt(g, p[1], AppointmentSource.STAFF, utc(1, 12), AppointmentStatus.CHECKED_IN)
    # H: starts Sun 1 Nov 23:00 LA (07:00 UTC on the 2nd): a no-show outside the range.
    h = slot(dr_la, small, utc(2, 7), None, status=SlotStatus.CLOSED)
    appt(h, p[2], AppointmentSource.STAFF, utc(1, 12), AppointmentStatus.NO_SHOW)
    # I: NY, the clinic cancelled (not the patient's doing).
    i = slot(dr_ny, small, utc(6, 15), None, status=SlotStatus.CLOSED)
    appt(
        i,
        p[3],
        AppointmentSource.STAFF,
        utc(1, 12),
        AppointmentStatus.CANCELLED,
        cancellation_tier=FeeTier.LATE,
    )

    D, SENT = AttemptStatus.DELIVERED, AttemptStatus.SENT
    done, pending, exhausted = (
        NotificationStatus.DELIVERED,
        NotificationStatus.PENDING,
        NotificationStatus.EXHAUSTED,
    )
    offer_ = Purpose.OFFER
    _message(p[0], offer_, utc(2, 17, 5), done, [("sms", D)], offer_id=a1.id)
    _message(
        p[1],
        offer_,
        utc(2, 17, 5),
        done,
        [("sms", AttemptStatus.FAILED), ("email", D)],
        offer_id=a2.id,
    )
    _message(p[2], offer_, utc(2, 17, 5), pending, [("sms", SENT)], offer_id=a3.id)
    _message(
        p[3],
        offer_,
        utc(9, 15, 5),
        exhausted,
        [
            ("sms", AttemptStatus.FAILED),
            ("email", AttemptStatus.BOUNCED),
            ("voice", AttemptStatus.NO_ANSWER),
        ],
        offer_id=c1.id,
    )
    _message(p[4], offer_, utc(9, 15, 40), done, [("sms", D)], offer_id=c2.id)
    _message(
        p[0], Purpose.CONFIRMATION, utc(2, 17, 30), done, [("email", D)], appointment_id=a_appt.id
    )
    _message(p[0], Purpose.STAFF_ALERT, utc(2, 17, 30), done, [("email", D)])
    # No offer or appointment: the patient's home clinic (LA) places it on Sun 15 Nov.
    _message(
        p[5],
        Purpose.NO_SHOW,
        utc(16, 7, 30),
        done,
        [("sms", AttemptStatus.SKIPPED), ("email", D)],
    )

    S, R, W, OWED = (
        ChargeStatus.SUCCEEDED,
        ChargeStatus.REFUNDED,
        ChargeStatus.WAIVED,
        ChargeStatus.OWED,
    )
    _charge(
        p[6],
        ChargeKind.CANCELLATION_FEE,
        20000,
        utc(3, 16),
        [(OWED, 20000), (S, 20000)],
        appointment_id=f_appt.id,
    )
    _charge(
        p[4],
        ChargeKind.DEPOSIT,
        5000,
        utc(9, 16),
        [(OWED, 5000), (S, 5000), (R, 5000)],
        appointment_id=c_appt.id,
    )
    _charge(
        p[3],
        ChargeKind.PREPAYMENT,
        40000,
        utc(16, 7, 45),
        [(OWED, 40000), (W, 0)],
        appointment_id=b_appt.id,
    )
    _charge(  # 01:00 on the 16th in LA: outside
        p[3],
        ChargeKind.CANCELLATION_FEE,
        1000,
        utc(16, 9),
        [(OWED, 1000)],
        appointment_id=b_appt.id,
    )
    db.session.commit()
    return Clinic(la, ny)


def test_fill_figures_count_releases_on_their_local_day(clinic: Clinic) -> None:
    got = analytics.figures(FROM, TO)
    assert (got.released, got.filled) == (5, 3)  # A B C D F; A B C filled
    assert got.still_open == 0  # D's time has passed
    assert got.fill_rate.value == 0.6
    assert got.filled_by == {"waitlist": 1, "alternative": 1, "staff": 1, "api": 0}
    assert got.median_minutes_to_fill == 30.0  # 30, 30, 90
    assert got.p90_minutes_to_fill == 78.0  # 30 + 0.8 × (90 − 30)
    assert got.offers_per_filled_slot == round(5 / 3, 2)  # A's 3 + C's 2, over 3 fills
    assert got.revenue_recovered_cents == 100000


def test_weekly_series_by_local_week(clinic: Clinic) -> None:
    weeks = {w["week"]: w for w in analytics.figures(FROM, TO).weeks}
    assert sorted(weeks) == [WEEK1, WEEK2]
    one, two = weeks[WEEK1], weeks[WEEK2]
    assert (one["released"], one["filled"]) == (2, 1)  # A F
    assert (two["released"], two["filled"]) == (3, 2)  # B C D
    # Appointments by local start: A E F I in week 1; C and G (Sunday 23:30 LA) in week 2.
    assert (one["appointments"], one["no_shows"], one["due"], one["late_cancellations"]) == (
        4,
        0,
        1,
        1,
    )
    assert (one["no_show_rate"], one["late_cancellation_rate"]) == (0.0, 0.25)
    assert (two["appointments"], two["no_shows"], two["due"], two["late_cancellations"]) == (
        2,
        1,
        2,
        0,
    )
    assert (two["no_show_rate"], two["late_cancellation_rate"]) == (0.5, 0.0)
    # Messages (staff alerts aside): week 1 A1 A2 A3 + A's confirmation to 3 patients;
    # week 2 C1 C2 and the no-show message sent Sunday 23:30 LA, to 3 patients.
    assert (one["messages"], one["patients_messaged"], one["messages_per_patient"]) == (
        4,
        3,
        1.33,
    )
    assert (two["messages"], two["patients_messaged"], two["messages_per_patient"]) == (3, 3, 1.0)


def test_acceptance_by_channel_wave_and_mode(clinic: Clinic) -> None:
    got = analytics.figures(FROM, TO)
    acc = got.acceptance
    # Seven offers in range (E's is on 1 Nov locally); answered = accepted, declined, expired.
    assert acc["overall"] == {"offers": 7, "count": 1, "of": 5, "rate": 0.2}
    assert acc["by_channel"] == [
        {"channel": "sms", "offers": 3, "count": 1, "of": 2, "rate": 0.5},
        {"channel": "email", "offers": 1, "count": 0, "of": 1, "rate": 0.0},
        {"channel": "voice", "offers": 1, "count": 0, "of": 1, "rate": 0.0},
        {"channel": "none", "offers": 2, "count": 0, "of": 1, "rate": 0.0},
    ]
    assert acc["by_wave"] == [
        {"wave": 1, "offers": 5, "count": 1, "of": 3, "rate": round(1 / 3, 4)},
        {"wave": 2, "offers": 1, "count": 0, "of": 1, "rate": 0.0},
        {"wave": 4, "offers": 1, "count": 0, "of": 1, "rate": 0.0},
    ]
    assert acc["by_mode"] == [
        {"mode": "sequential", "offers": 2, "count": 0, "of": 2, "rate": 0.0},
        {"mode": "waves", "offers": 3, "count": 1, "of": 2, "rate": 0.5},
        {"mode": "broadcast", "offers": 1, "count": 0, "of": 0, "rate": None},
        {"mode": "manual", "offers": 1, "count": 0, "of": 1, "rate": 0.0},
    ]


def test_delivery_fallback_depth_and_messages_per_patient(clinic: Clinic) -> None:
    got = analytics.figures(FROM, TO)
    assert got.delivery == [
        {"channel": "sms", "count": 2, "of": 4, "rate": 0.5},
        {"channel": "email", "count": 3, "of": 4, "rate": 0.75},
        {"channel": "voice", "count": 0, "of": 1, "rate": 0.0},
    ]
    assert got.fallback_depth == [
        {"depth": 1, "messages": 4, "delivered": 3, "exhausted": 0},
        {"depth": 2, "messages": 2, "delivered": 2, "exhausted": 0},
        {"depth": 3, "messages": 1, "delivered": 0, "exhausted": 1},
    ]
    assert got.messages_per_patient_per_week == round(7 / 6, 2)


def test_fees_charged_waived_collected(clinic: Clinic) -> None:
    fees = analytics.figures(FROM, TO).fees
    assert fees["by_kind"] == [
        {
            "kind": "cancellation_fee",
            "charges": 1,
            "charged": 20000,
            "waived": 0,
            "collected": 20000,
        },
        {"kind": "deposit", "charges": 1, "charged": 5000, "waived": 0, "collected": 0},
        {"kind": "prepayment", "charges": 1, "charged": 40000, "waived": 40000, "collected": 0},
    ]
    assert (fees["charged_cents"], fees["waived_cents"], fees["collected_cents"]) == (
        65000,
        40000,
        20000,
    )


def test_one_location(clinic: Clinic) -> None:
    ny = analytics.figures(FROM, TO, clinic.ny.id)
    assert (ny.released, ny.filled, ny.filled_by["staff"]) == (2, 1, 1)  # C F
    assert ny.median_minutes_to_fill == 90.0
    assert ny.acceptance["overall"]["offers"] == 2
    la = analytics.figures(FROM, TO, clinic.la.id)
    assert (la.released, la.filled) == (3, 2)  # A B D
    assert la.fees["charged_cents"] == 40000  # B's prepayment


def test_an_empty_range_has_no_rates(clinic: Clinic) -> None:
    got = analytics.figures(date(2025, 1, 1), date(2025, 1, 7))
    assert (got.released, got.filled, got.fill_rate.value) == (0, 0, None)
    assert got.median_minutes_to_fill is None
    assert got.weeks == []
    assert got.acceptance["overall"]["rate"] is None
    assert got.as_json()["fill_rate"] == {"count": 0, "of": 0, "rate": None}


def test_releases_still_ahead_are_left_out_of_the_fill_rate(clinic: Clinic) -> None:
    """D is still open but its time has passed; K, released the same day, is a week ahead."""
    from portal.models.enums import SlotStatus as S

    la = clinic.la
    k = f.slot(
        practitioner=f.practitioner(location=la),
        start_at=datetime.now(UTC) + timedelta(days=7),
        opened_at=utc(10, 19),
        status=S.OPEN,
    )
    db.session.commit()
    got = analytics.figures(FROM, TO)
    assert (got.released, got.filled, got.still_open) == (6, 3, 1)
    assert got.fill_rate.as_json() == {"count": 3, "of": 5, "rate": 0.6}
    week = {w["week"]: w for w in got.weeks}[WEEK2]
    assert (week["released"], week["still_open"], week["fill_rate"]) == (4, 1, round(2 / 3, 4))
    assert k.id


def test_range_edges_are_local_days(clinic: Clinic) -> None:
    """Ending the range a day early drops B (Sunday 23:30 LA) though its UTC day is later."""
    got = analytics.figures(FROM, TO - timedelta(days=1))
    assert got.released == 4
    assert got.filled_by["alternative"] == 0


def test_the_api_answers_the_same_figures(clinic: Clinic, client) -> None:
    from portal.services.api_tokens import create_api_token
    from portal.services.audit import SYSTEM

    _, raw = create_api_token("analytics", SYSTEM)
    db.session.commit()
    auth = {"Authorization": f"Bearer {raw}"}
    response = client.get("/api/v1/analytics?from=2026-11-02&to=2026-11-15", headers=auth)
    assert response.status_code == 200
    body = response.get_json()
    assert body == analytics.figures(FROM, TO).as_json()
    assert body["fill_rate"] == {"count": 3, "of": 5, "rate": 0.6}
    assert body["weeks"][0]["week"] == "2026-11-02"
    ny = client.get(
        f"/api/v1/analytics?from=2026-11-02&to=2026-11-15&location_id={clinic.ny.id}",
        headers=auth,
    ).get_json()
    assert ny["released"] == 2
    assert client.get("/api/v1/analytics", headers=auth).status_code == 200  # last 28 days


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("from=2026-11-15&to=2026-11-02", "invalid_range"),
        ("from=2024-01-01&to=2026-11-02", "invalid_range"),
        ("location_id=999", "unknown_location"),
        ("from=yesterday", "validation_error"),
        ("location_id=0", "validation_error"),
        ("to=9999-12-31", "validation_error"),
    ],
)
def test_the_api_refuses_bad_ranges_with_a_code(
    clinic: Clinic, client, query: str, code: str
) -> None:
    from portal.services.api_tokens import create_api_token
    from portal.services.audit import SYSTEM

    _, raw = create_api_token("analytics", SYSTEM)
    db.session.commit()
    response = client.get(f"/api/v1/analytics?{query}", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == code


def _staff_client(client):
    from tests.staff.conftest import PASSWORD, post_login

    user = f.staff_user(password=PASSWORD)
    db.session.commit()
    assert post_login(client, user.email, PASSWORD).status_code == 302
    return client


def test_the_dashboard_shows_charts_with_their_tables(clinic: Clinic, client) -> None:
    import base64
    import re

    _staff_client(client)
    page = client.get("/staff/analytics?from=2026-11-02&to=2026-11-15")
    assert page.status_code == 200
    html = page.text
    images = re.findall(
        r'<img class="chart" src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]+)"', html
    )
    assert len(images) == 8  # fills, attendance, channel, wave, mode, delivery, depth, messages
    for data, alt in images:
        svg = base64.b64decode(data).decode()
        assert svg.startswith("<svg") and "<script" not in svg
        assert "table below" in alt
    # Nothing the strict CSP would block in the page itself.
    assert "<script>" not in html and " style=" not in html and "<style" not in html
    assert "60%" in html and "filled (3 of 5)" in html
    assert "$1,000.00" in html  # revenue recovered
    assert "Waitlist offer" in html and "One at a time" in html
    assert 'href="/staff/analytics"' in html  # the navigation entry


@pytest.mark.parametrize(
    "query",
    [
        "from=nonsense",
        "from=2026-11-15&to=2026-11-01",
        "from=2020-01-01&to=2026-11-01",
        "location=999",
        "location=abc",
        "to=9999-01-01",
        "from=%00",
    ],
)
def test_bad_dashboard_filters_fall_back_to_the_default_range(
    clinic: Clinic, client, query: str
) -> None:
    _staff_client(client)
    page = client.get(f"/staff/analytics?{query}")
    assert page.status_code == 200
    assert "default range" in page.text or "showing all" in page.text


def test_the_dashboard_filters_one_location(clinic: Clinic, client) -> None:
    _staff_client(client)
    page = client.get(f"/staff/analytics?from=2026-11-02&to=2026-11-15&location={clinic.ny.id}")
    assert page.status_code == 200
    assert "filled (1 of 2)" in page.text
