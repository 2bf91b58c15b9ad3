"""The no-show sweep: due rows only, exactly once under overlap and a killed worker,
tiers 1/2/3 with their messages and flags, and the freed time offered for real."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from jobs.noshow import sweep_no_shows
from portal.clock import ManualClock, use_clock
from portal.db import db, now_utc
from portal.models import Appointment, AuditEvent, Notification, Offer, PatientFlag, Slot
from portal.models.enums import (
    AppointmentSource,
    AppointmentStatus,
    FlagKind,
    NoShowTier,
    OfferStatus,
    Purpose,
    SlotStatus,
)
from portal.services import holds, noshow, tiers
from portal.services.audit import Actor
from portal.services.filling import advance
from tests import factories as f
from tests.conftest import TEST_SECRET
from tests.races import assert_consistent, race

pytestmark = pytest.mark.usefixtures("app")
ROOT = Path(__file__).resolve().parents[2]


def _appointment(minutes_ago: int, *, patient=None, minutes: int = 60, **kw) -> Appointment:
    start = (now_utc() - timedelta(minutes=minutes_ago)).replace(second=0, microsecond=0)
    slot = f.slot(start_at=start, minutes=minutes)
    kw.setdefault("status", AppointmentStatus.CONFIRMED)
    return f.appointment(slot=slot, patient=patient or f.patient(), **kw)


def _no_show_notifications() -> list[Notification]:
    return list(
        db.session.scalars(sa.select(Notification).where(Notification.purpose == Purpose.NO_SHOW))
    )


@pytest.mark.parametrize(
    ("minutes_ago", "grace", "marked"),
    [(5, None, True), (4, None, False), (10, 10, True), (9, 10, False), (0, 0, True)],
)
def test_only_appointments_past_the_grace_are_marked(
    minutes_ago: int, grace: int | None, marked: bool
) -> None:
    clock = ManualClock(now_utc().replace(second=0, microsecond=0))
    with use_clock(clock):
        appt = _appointment(minutes_ago)
        db.session.commit()
        sweep_no_shows(grace_minutes=grace)
    db.session.expire_all()
    assert (db.session.get(Appointment, appt.id).status == AppointmentStatus.NO_SHOW) is marked


@pytest.mark.parametrize(
    "status",
    [AppointmentStatus.CHECKED_IN, AppointmentStatus.COMPLETED, AppointmentStatus.CANCELLED],
)
def test_checked_in_completed_or_cancelled_is_never_a_no_show(status: AppointmentStatus) -> None:
    appt = _appointment(30, status=status)
    if status == AppointmentStatus.CANCELLED:
        appt.slot.status = SlotStatus.OPEN
    db.session.commit()
    assert sweep_no_shows()["no_shows"] == 0
    db.session.expire_all()
    assert db.session.get(Appointment, appt.id).status == status


def test_two_sweeps_at_once_mark_each_appointment_exactly_once(app: Flask) -> None:
    ids = [_appointment(30 + i).id for i in range(60)]
    db.session.commit()
    outcomes = race(
        app,
        [lambda: str(len(noshow.mark_due(limit=7))) for _ in range(2)] * 6,
    )
    sweep_no_shows()  # whatever the racing batches left
    assert not [o for o in outcomes if o.startswith("error")]
    db.session.expire_all()
    statuses = db.session.scalars(sa.select(Appointment.status).where(Appointment.id.in_(ids)))
    assert set(statuses) == {AppointmentStatus.NO_SHOW}
    assert len(_no_show_notifications()) == 60
    events = db.session.scalars(
        sa.select(AuditEvent.entity_id).where(AuditEvent.action == "appointment.no_show")
    ).all()
    assert sorted(events) == sorted(ids)
    assert_consistent()


def test_a_sweep_killed_mid_batch_leaves_nothing_half_done(
    app: Flask, app_config: dict, tmp_path: Path
) -> None:
    ids = [_appointment(30 + i).id for i in range(10)]
    db.session.commit()
    env = {
        **os.environ,
        "PORTAL_TEST_CONFIG": json.dumps(app_config),
        "SECRET_KEY": TEST_SECRET,
        "SWEEP_BATCH": "4",
        "SWEEP_HANG_AT": "6",  # inside the second batch
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.sweep_main"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        seen = []
        while not seen or seen[-1] != "hanging":  # log lines come first
            line = proc.stdout.readline().decode()
            assert line, "".join(seen)
            seen.append(line.strip())
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stdout.close()
    db.session.expire_all()
    marked = db.session.scalars(
        sa.select(Appointment.id).where(Appointment.status == AppointmentStatus.NO_SHOW)
    ).all()
    assert len(marked) == 4  # the first batch committed; the second died whole
    assert len(_no_show_notifications()) == 4

    tally = sweep_no_shows()
    assert tally["no_shows"] == 6
    db.session.expire_all()
    statuses = db.session.scalars(sa.select(Appointment.status).where(Appointment.id.in_(ids)))
    assert set(statuses) == {AppointmentStatus.NO_SHOW}
    assert sorted(n.appointment_id for n in _no_show_notifications()) == sorted(ids)
    assert_consistent()


@pytest.mark.parametrize(
    ("earlier", "tier", "deposit", "prepay"),
    [
        (0, NoShowTier.DISCOUNT, False, False),
        (1, NoShowTier.DEPOSIT, True, False),
        (2, NoShowTier.PREPAYMENT, False, True),
        (5, NoShowTier.PREPAYMENT, False, True),
    ],
)
def test_tiers_follow_the_count_in_the_window(
    earlier: int, tier: NoShowTier, deposit: bool, prepay: bool
) -> None:
    patient = f.patient()
    for i in range(earlier):
        f.appointment(
            slot=f.slot(start_at=now_utc() - timedelta(days=20 + i), status=SlotStatus.CLOSED),
            patient=patient,
            status=AppointmentStatus.NO_SHOW,
            no_show_at=now_utc() - timedelta(days=20 + i),
        )
    appt = _appointment(30, patient=patient)
    db.session.commit()
    sweep_no_shows()
    db.session.expire_all()
    (note,) = _no_show_notifications()
    assert note.context["tier"] == tier.value and note.appointment_id == appt.id
    assert tiers.patient_tier(patient) == tier
    kind = holds.payment_required(patient)
    assert (kind is not None and kind.value == "deposit") is deposit
    assert (kind is not None and kind.value == "prepayment") is prepay
    flag = db.session.scalars(
        sa.select(PatientFlag).where(PatientFlag.kind == FlagKind.NO_SHOW)
    ).one()
    assert f"tier: {tier.value}" in flag.notes


@pytest.mark.parametrize(
    ("months_ago", "days_extra", "counted"),
    [(6, -1, True), (6, 0, True), (6, 1, False), (12, 0, False)],
)
def test_the_six_month_window_edge(months_ago: int, days_extra: int, counted: bool) -> None:
    import arrow

    now = now_utc()
    when = arrow.get(now).shift(months=-months_ago, days=-days_extra).datetime
    patient = f.patient()
    f.appointment(
        slot=f.slot(start_at=when, status=SlotStatus.CLOSED),
        patient=patient,
        status=AppointmentStatus.NO_SHOW,
        no_show_at=when,
    )
    db.session.commit()
    assert tiers.no_show_count(patient.id, now) == (1 if counted else 0)


def test_enough_time_left_is_offered_to_short_notice_patients_at_once() -> None:
    clock = ManualClock(now_utc().replace(second=0, microsecond=0))
    with use_clock(clock):
        appt = _appointment(6, minutes=120)  # two-hour slot, 6 minutes in
        slot = appt.slot
        eager = f.waitlist_entry(slot=slot, short_notice_ok=True)
        f.waitlist_entry(slot=slot, short_notice_ok=False)
        db.session.commit()
        tally = sweep_no_shows()
        assert tally["freed_slots"] == 1
        freed = db.session.scalars(sa.select(Slot).where(Slot.freed_from_id == slot.id)).one()
        assert freed.status == SlotStatus.OPEN and freed.end_at == slot.end_at
        assert freed.start_at >= now_utc() + timedelta(minutes=10)
        outcome = advance(freed.id)  # the fill job the sweep scheduled
        db.session.commit()
    assert [o.waitlist_entry_id for o in outcome.offers] == [eager.id]
    assert outcome.offers[0].status == OfferStatus.PENDING
    assert db.session.get(Slot, slot.id).status == SlotStatus.CLOSED
    assert_consistent()


def test_too_little_left_offers_the_practitioners_next_open_slots() -> None:
    appt = _appointment(40, minutes=45)  # 5 minutes left: not enough for 30
    practitioner = appt.slot.practitioner
    later = f.slot(
        start_at=now_utc() + timedelta(hours=3),
        practitioner=practitioner,
        service=appt.slot.service,
        fill_exhausted_at=now_utc(),
    )
    entry = f.waitlist_entry(slot=later, short_notice_ok=True)
    db.session.commit()
    tally = sweep_no_shows()
    assert tally == {"no_shows": 1, "freed_slots": 0, "restarted_slots": 1, "batches": 1}
    db.session.expire_all()
    assert db.session.get(Slot, later.id).fill_exhausted_at is None
    offers = advance(later.id).offers
    db.session.commit()
    assert [o.waitlist_entry_id for o in offers] == [entry.id]
    assert db.session.scalars(sa.select(Offer).where(Offer.slot_id == appt.slot_id)).all() == []


def test_staff_check_in_after_the_sweep_is_refused_clearly() -> None:
    from portal.services.appointments import check_in
    from portal.services.errors import Conflict

    appt = _appointment(30)
    db.session.commit()
    sweep_no_shows()
    with pytest.raises(Conflict, match="no-show"):
        check_in(db.session.get(Appointment, appt.id), Actor.staff(f.staff_user()))


def test_the_first_no_shows_link_rebooks_with_the_discount(client) -> None:
    from portal.services.links import rebook_token

    appt = _appointment(30)
    later = f.slot(
        start_at=now_utc() + timedelta(days=2),
        practitioner=appt.slot.practitioner,
        service=appt.slot.service,
    )
    db.session.commit()
    sweep_no_shows()
    db.session.expire_all()
    missed = db.session.get(Appointment, appt.id)
    note = _no_show_notifications()[0]
    from portal.models.enums import Channel
    from portal.services.notify.messages import render_message

    sms = render_message(note, Channel.SMS).body
    token = rebook_token(missed.id, missed.patient_id, missed.no_show_at)
    assert f"/r/{token}" in sms and "20% off" in sms
    page = client.get(f"/r/{token}")
    assert page.status_code == 200 and "20% off" in page.text
    from tests.conftest import csrf_token_from

    booked = client.post(f"/r/{token}/{later.id}", data={"csrf_token": csrf_token_from(page.text)})
    assert booked.status_code == 303
    again = client.post(f"/r/{token}/{later.id}", data={"csrf_token": csrf_token_from(page.text)})
    assert again.status_code == 303 and again.headers["Location"] == booked.headers["Location"]
    db.session.expire_all()
    new = db.session.scalars(
        sa.select(Appointment).where(Appointment.rebooked_from_id == missed.id)
    ).one()
    assert new.discount_percent == 20 and new.slot_id == later.id
    assert new.source == AppointmentSource.ALTERNATIVE


def test_home_page_counts_no_shows_for_staff(signed_in) -> None:
    _appointment(30)
    db.session.commit()
    sweep_no_shows()
    page = signed_in.get("/staff/").text
    assert "No-shows (24 h)" in page


def test_the_command_sweeps_with_its_own_grace(runner) -> None:
    clock = ManualClock(now_utc().replace(second=0, microsecond=0))
    with use_clock(clock):
        soon = _appointment(3)
        db.session.commit()
        result = runner.invoke(args=["sweep-no-shows", "--grace-minutes", "10"])
        assert "0 no-show(s) marked" in result.output
        result = runner.invoke(args=["sweep-no-shows", "--grace-minutes", "2"])
        assert "1 no-show(s) marked" in result.output, result.output
    db.session.expire_all()
    assert db.session.get(Appointment, soon.id).status == AppointmentStatus.NO_SHOW
    bad = runner.invoke(args=["sweep-no-shows", "--grace-minutes", "-5"])
    assert bad.exit_code != 0
