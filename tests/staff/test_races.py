"""Staff actions racing patients over real HTTP: one booking, and closures that win or lose
cleanly against an accept."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial

import requests
import sqlalchemy as sa

from portal.db import db
from portal.models import Appointment, Closure, Notification, Offer
from portal.models.enums import OfferStatus, Purpose
from portal.services.timezones import to_local
from tests import factories as f
from tests.conftest import csrf_token_from
from tests.patient.conftest import build_scene, offer_token
from tests.races import assert_consistent
from tests.staff.conftest import PASSWORD

ROUNDS = 5


def _staff_session(base: str, email: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    page = session.get(f"{base}/staff/login", timeout=10).text
    session.post(
        f"{base}/staff/login",
        data={"csrf_token": csrf_token_from(page), "email": email, "password": PASSWORD},
        timeout=10,
    )
    return session, csrf_token_from(session.get(f"{base}/staff/", timeout=10).text)


def _at_once(
    *calls: Callable[[], requests.Response], delays: tuple[float, ...] = ()
) -> list[requests.Response]:
    """Start every call at the same instant (after its own delay, if given)."""
    barrier = threading.Barrier(len(calls))
    results: list[requests.Response | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        if i < len(delays):
            time.sleep(delays[i])
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def test_staff_booking_while_a_patient_accepts_books_once(live_server: str) -> None:
    desk = f.staff_user(password=PASSWORD)
    db.session.commit()
    staff, staff_csrf = _staff_session(live_server, desk.email)
    for _ in range(ROUNDS):
        scene = build_scene()
        walk_in = f.patient(name="Walk In")
        db.session.commit()
        link = f"{live_server}/o/{offer_token(scene.offer_a)}"
        patient = requests.Session()
        patient_csrf = csrf_token_from(patient.get(link, timeout=10).text)
        book_url = f"{live_server}/staff/slots/{scene.slot.id}/book"
        walk_in_id = walk_in.id
        staff_reply, patient_reply = _at_once(
            partial(
                staff.post,
                book_url,
                data={"csrf_token": staff_csrf, "patient_id": walk_in_id},
                timeout=30,
            ),
            partial(patient.post, f"{link}/accept", data={"csrf_token": patient_csrf}, timeout=30),
        )
        assert staff_reply.status_code == 200 and patient_reply.status_code == 200
        db.session.expire_all()
        booked = db.session.scalars(
            sa.select(Appointment).where(Appointment.slot_id == scene.slot.id)
        ).all()
        assert len(booked) == 1
        if booked[0].patient_id == walk_in_id:
            assert "just taken" in patient_reply.text
            assert db.session.get(Offer, scene.offer_a.id).status == OfferStatus.WITHDRAWN
        else:
            assert "This slot was just taken by someone else." in staff_reply.text
            assert "booked" in patient_reply.text.lower()
        assert_consistent()


def test_a_closure_created_while_offers_are_out_wins_or_loses_cleanly(live_server: str) -> None:
    desk = f.staff_user(password=PASSWORD)
    db.session.commit()
    staff, staff_csrf = _staff_session(live_server, desk.email)
    outcomes: Counter[str] = Counter()
    # The patient starts up to 0.2 s later in later rounds, so each side gets to win.
    for round_no in range(ROUNDS):
        db.session.execute(sa.delete(Closure))
        scene = build_scene()
        day = to_local(scene.slot.start_at, "America/New_York").date()
        link = f"{live_server}/o/{offer_token(scene.offer_a)}"
        patient = requests.Session()
        patient_csrf = csrf_token_from(patient.get(link, timeout=10).text)
        form = {
            "csrf_token": staff_csrf,
            "location": scene.slot.location_id,
            "kind": "hours",
            "first_day": day.isoformat(),
            "start_time": "09:00",
            "end_time": "12:00",
            "reason": "Power cut",
        }
        _at_once(
            partial(staff.post, f"{live_server}/staff/closures", data=form, timeout=30),
            partial(patient.post, f"{link}/accept", data={"csrf_token": patient_csrf}, timeout=30),
            delays=(0.0, 0.05 * round_no),
        )
        db.session.expire_all()
        assert_consistent()
        offers = {
            o.id: o
            for o in db.session.scalars(sa.select(Offer).where(Offer.slot_id == scene.slot.id))
        }
        b = offers[scene.offer_b.id]
        told_b = db.session.scalar(
            sa.select(Notification).where(
                Notification.offer_id == b.id, Notification.purpose == Purpose.SLOT_FILLED
            )
        )
        assert b.status == OfferStatus.WITHDRAWN and told_b is not None  # Ben is told either way
        booking = db.session.scalar(
            sa.select(Appointment).where(Appointment.slot_id == scene.slot.id)
        )
        if booking is not None:  # the accept won: the closure lists the booking for staff
            outcomes["accepted first"] += 1
            assert offers[scene.offer_a.id].status == OfferStatus.ACCEPTED
            assert b.withdrawn_reason == "slot_filled"
        else:  # the closure won: both offers withdrawn, both patients told why
            outcomes["closure first"] += 1
            assert offers[scene.offer_a.id].status == OfferStatus.WITHDRAWN
            assert {o.withdrawn_reason for o in offers.values()} == {"closure"}
            assert told_b.context == {"closure": True}
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Closure)) == 1
    print(dict(outcomes))  # which side won how often (-s shows it); either order is correct
    assert sum(outcomes.values()) == ROUNDS
