"""Forty patients accept one broadcast offer at the same instant, over real HTTP.

The portal runs under gunicorn (4 worker processes × 4 threads) on the test database,
so the race is decided by PostgreSQL between separate processes, as in production.
Every patient has its own cookie jar: it opens its offer page (for the CSRF token),
waits at a barrier with the others, then taps "Book this time".
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from portal.db import db
from portal.models import Appointment, Notification, Offer, Slot
from portal.models.enums import (
    INACTIVE_APPOINTMENT_STATUSES,
    AppointmentSource,
    OfferStatus,
    Purpose,
    SlotStatus,
)
from tests import factories as f
from tests.conftest import TEST_SECRET, csrf_token_from
from tests.e2e.server import gunicorn_server, log_tail

pytestmark = pytest.mark.slow

PATIENTS = 40
ROUNDS = 2
CATEGORY = "injectables"
TIMEOUT = 30.0
M = TypeVar("M")
_ALTERNATIVE_FORM = re.compile(r'<form method="post" action="([^"]*/alternatives/(\d+))"')


@dataclass(frozen=True)
class Reply:
    """What a patient's browser saw (redirects not followed)."""

    status: int
    location: str
    body: str

    @classmethod
    def of(cls, resp: requests.Response) -> Reply:
        return cls(resp.status_code, resp.headers.get("Location", ""), resp.text)

    def alternative_ids(self, token: str) -> set[int]:
        """Slot ids this page offers to book, from forms posting to this patient's link."""
        return {
            int(slot_id)
            for action, slot_id in _ALTERNATIVE_FORM.findall(self.body)
            if action == f"/o/{token}/alternatives/{slot_id}"
        }


@pytest.fixture(scope="module")
def server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gunicorn") / "error.log"


@pytest.fixture(scope="module")
def live_url(
    app: Flask, database_url: str, engine_urls: tuple[str, str], server_log: Path
) -> Iterator[str]:
    """gunicorn serving the session's (migrated) test database; ``app`` ran the migrations."""
    with gunicorn_server(
        database_url, engine_urls[1], TEST_SECRET, workers=4, threads=4, log_path=server_log
    ) as url:
        yield url


def race(
    sessions: list[requests.Session],
    prepare: Callable[[int, requests.Session], str],
    fire: Callable[[int, requests.Session, str], requests.Response],
) -> list[Reply]:
    """Run ``prepare`` per session, then ``fire`` them all at once (a barrier in between)."""
    barrier = threading.Barrier(len(sessions))

    def one(i: int) -> Reply:
        try:
            prepared = prepare(i, sessions[i])
            barrier.wait(timeout=TIMEOUT)
        except BaseException:
            barrier.abort()  # release the others rather than leave them waiting
            raise
        return Reply.of(fire(i, sessions[i], prepared))

    with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
        return list(pool.map(one, range(len(sessions))))


def accept_storm(base_url: str, tokens: list[str]) -> tuple[list[requests.Session], list[Reply]]:
    """Every patient opens its offer page, then all accept together."""
    sessions = [requests.Session() for _ in tokens]

    def open_offer(i: int, session: requests.Session) -> str:
        page = session.get(f"{base_url}/o/{tokens[i]}", timeout=TIMEOUT)
        assert page.status_code == 200, f"offer page answered {page.status_code}"
        return csrf_token_from(page.text)

    def accept(i: int, session: requests.Session, csrf: str) -> requests.Response:
        return session.post(
            f"{base_url}/o/{tokens[i]}/accept",
            data={"csrf_token": csrf},
            allow_redirects=False,
            timeout=TIMEOUT,
        )

    return sessions, race(sessions, open_offer, accept)


def _fetch(model: type[M], *where: sa.ColumnElement[bool]) -> list[M]:
    return list(db.session.scalars(sa.select(model).where(*where)))


def test_livez_over_gunicorn(live_url: str) -> None:
    resp = requests.get(f"{live_url}/livez", timeout=TIMEOUT)

    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert resp.text == "ok"


def test_simultaneous_accepts_book_once_and_show_losers_alternatives(
    live_url: str, server_log: Path
) -> None:
    for round_no in range(1, ROUNDS + 1):
        scene = f.broadcast_scene(PATIENTS, CATEGORY)
        sessions, replies = accept_storm(live_url, scene.tokens)
        try:
            _check_storm(scene, replies)
            _check_alternative_race(live_url, scene, sessions, replies)
        except AssertionError as exc:
            raise AssertionError(
                f"round {round_no}: {exc}\n--- server log ---\n{log_tail(server_log)}"
            ) from exc
        finally:
            for session in sessions:
                session.close()


def _check_storm(scene: f.BroadcastScene, replies: list[Reply]) -> None:
    statuses = Counter(r.status for r in replies)
    assert not [s for s in statuses if s >= 500], f"server errors: {statuses}"
    winners = [i for i, r in enumerate(replies) if r.status == 303]
    assert len(winners) == 1, f"expected exactly one booking, got {statuses}"
    (winner,) = winners
    assert replies[winner].location.startswith("/a/")
    alternative_ids = {s.id for s in scene.alternatives}
    for i, reply in enumerate(replies):
        if i == winner:
            continue
        assert reply.status == 200, f"loser {i} got {reply.status}"
        assert reply.alternative_ids(scene.tokens[i]) == alternative_ids, (
            f"loser {i} was not offered both alternatives"
        )

    db.session.rollback()  # read what the server committed, not our own snapshot
    db.session.expire_all()
    slot_id = scene.slot.id
    offer_ids = [o.id for o in scene.offers]
    loser_ids = {oid for i, oid in enumerate(offer_ids) if i != winner}
    assert db.session.get(Slot, slot_id).status == SlotStatus.BOOKED
    active = _fetch(
        Appointment,
        Appointment.slot_id == slot_id,
        Appointment.status.not_in(INACTIVE_APPOINTMENT_STATUSES),
    )
    assert [(a.offer_id, a.patient_id) for a in active] == [
        (offer_ids[winner], scene.offers[winner].patient_id)
    ]
    by_status: dict[OfferStatus, set[int]] = {}
    for offer in _fetch(Offer, Offer.slot_id == slot_id):
        by_status.setdefault(offer.status, set()).add(offer.id)
    assert by_status == {
        OfferStatus.ACCEPTED: {offer_ids[winner]},
        OfferStatus.WITHDRAWN: loser_ids,
    }
    told = [
        n.offer_id
        for n in _fetch(
            Notification,
            Notification.purpose == Purpose.SLOT_FILLED,
            Notification.offer_id.in_(offer_ids),
        )
    ]
    assert sorted(told) == sorted(loser_ids), "each loser is told once that the slot was filled"


def _check_alternative_race(
    base_url: str, scene: f.BroadcastScene, sessions: list[requests.Session], replies: list[Reply]
) -> None:
    """Two losers tap the same alternative at once: one books it, the other may take the next."""
    losers = [i for i, r in enumerate(replies) if r.status == 200][:2]
    # Plain ids: the threads below have no app context to load expired ORM attributes.
    first_choice, second_choice = (s.id for s in scene.alternatives)

    def ready(i: int, _: requests.Session) -> str:
        return csrf_token_from(replies[losers[i]].body)

    def book(i: int, session: requests.Session, csrf: str) -> requests.Response:
        token = scene.tokens[losers[i]]
        return session.post(
            f"{base_url}/o/{token}/alternatives/{first_choice}",
            data={"csrf_token": csrf},
            allow_redirects=False,
            timeout=TIMEOUT,
        )

    pair = [sessions[i] for i in losers]
    outcome = race(pair, ready, book)
    assert sorted(r.status for r in outcome) == [200, 303], f"got {[r.status for r in outcome]}"
    won = next(k for k, r in enumerate(outcome) if r.status == 303)
    lost = 1 - won
    assert outcome[won].location.startswith("/a/")
    page = pair[won].get(f"{base_url}{outcome[won].location}", timeout=TIMEOUT)
    assert page.status_code == 200
    assert "You're booked!" in page.text or "You&#39;re booked!" in page.text
    assert outcome[lost].alternative_ids(scene.tokens[losers[lost]]) == {second_choice}

    second = pair[lost].post(
        f"{base_url}/o/{scene.tokens[losers[lost]]}/alternatives/{second_choice}",
        data={"csrf_token": csrf_token_from(outcome[lost].body)},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert second.status_code == 303
    assert second.headers["Location"].startswith("/a/")

    db.session.rollback()
    db.session.expire_all()
    booked = {
        a.slot_id: (a.patient_id, a.source)
        for a in _fetch(
            Appointment,
            Appointment.slot_id.in_([first_choice, second_choice]),
            Appointment.status.not_in(INACTIVE_APPOINTMENT_STATUSES),
        )
    }
    patient_of = [scene.offers[i].patient_id for i in losers]
    assert booked == {
        first_choice: (patient_of[won], AppointmentSource.ALTERNATIVE),
        second_choice: (patient_of[lost], AppointmentSource.ALTERNATIVE),
    }


HTTP_RELEASE_ROUNDS = 40


def test_api_release_racing_api_booking_never_leaves_a_ghost(live_url: str) -> None:
    """The ghost booking as first reported: pairs of release and book on one slot."""
    from datetime import timedelta

    from portal.db import now_utc
    from portal.services.api_tokens import create_api_token
    from portal.services.audit import SYSTEM
    from tests.races import assert_consistent

    _, token = create_api_token("race", SYSTEM)
    practitioner, service = f.practitioner(), f.service(duration_minutes=30)
    start = (now_utc() + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    rounds = []
    for n in range(HTTP_RELEASE_ROUNDS):
        slot = f.slot(
            start_at=start + timedelta(hours=n), practitioner=practitioner, service=service
        )
        if n % 2:
            f.appointment(slot=slot)
        rounds.append((slot.id, f.patient().id))
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    sessions = [requests.Session(), requests.Session()]
    statuses: Counter[int] = Counter()
    for slot_id, patient_id in rounds:

        def fire(
            i: int,
            session: requests.Session,
            _: str,
            slot_id: int = slot_id,
            patient_id: int = patient_id,
        ) -> requests.Response:
            if i == 0:
                # The release leaves up to 150 ms later, so over the rounds it lands before,
                # during and after the booking's transaction (the ghost needed "during").
                time.sleep(random.random() * 0.15)
                return session.post(
                    f"{live_url}/api/v1/slots/{slot_id}/release", headers=headers, timeout=TIMEOUT
                )
            return session.post(
                f"{live_url}/api/v1/appointments",
                json={"slot_id": slot_id, "patient_id": patient_id},
                headers=headers,
                timeout=TIMEOUT,
            )

        replies = race(sessions, lambda i, s: "", fire)
        assert replies[0].status == 200, replies[0].body
        statuses.update(r.status for r in replies)
    assert set(statuses) <= {200, 201, 409}, statuses
    db.session.rollback()
    assert_consistent()
