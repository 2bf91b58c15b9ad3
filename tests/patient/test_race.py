"""Two patients tap Accept at the same instant through a real server: one booking, one apology."""

from __future__ import annotations

import threading

import requests
import sqlalchemy as sa

from portal.db import db
from portal.models import Appointment
from tests.conftest import csrf_token_from
from tests.patient.conftest import build_scene, offer_token

ROUNDS = 5


def _race(base: str) -> tuple[list[tuple[int, bool]], int]:
    scene = build_scene()
    contenders = []
    for offer in (scene.offer_a, scene.offer_b):
        session, url = requests.Session(), f"{base}/o/{offer_token(offer)}"
        contenders.append((session, url, csrf_token_from(session.get(url, timeout=10).text)))
    outcomes: list[tuple[int, bool]] = [(0, False), (0, False)]
    start = threading.Barrier(len(contenders))

    def tap(i: int) -> None:
        session, url, csrf = contenders[i]
        start.wait()
        response = session.post(
            f"{url}/accept", data={"csrf_token": csrf}, allow_redirects=False, timeout=30
        )
        outcomes[i] = (response.status_code, "just taken" in response.text)

    threads = [threading.Thread(target=tap, args=(i,)) for i in range(len(contenders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.session.expire_all()
    booked = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Appointment)
        .where(Appointment.slot_id == scene.slot.id)
    )
    return outcomes, booked


def test_simultaneous_accepts_book_exactly_once(live_server: str) -> None:
    for _ in range(ROUNDS):
        outcomes, booked = _race(live_server)
        assert booked == 1
        assert sorted(outcomes) == [(200, True), (303, False)], outcomes
