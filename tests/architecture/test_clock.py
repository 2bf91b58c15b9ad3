"""Every "now" comes from one clock (``portal.clock``), and moving it moves the portal."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portal.clock import ManualClock, now_utc, use_clock
from portal.db import db
from portal.models import Offer, OfferPolicy
from portal.models.enums import OfferMode, OfferStatus
from portal.services.filling import advance
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]
#: Calls that read the wall clock; only ``portal/clock.py`` may make them.
WALL_CLOCK = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("arrow", "now"),
    ("arrow", "utcnow"),
}


def _wall_clock_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and (node.func.value.id, node.func.attr) in WALL_CLOCK
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_nothing_but_the_clock_reads_the_wall_clock() -> None:
    sources = [*ROOT.joinpath("portal").rglob("*.py"), *ROOT.joinpath("jobs").rglob("*.py")]
    offenders = [
        hit
        for path in sources
        if path != ROOT / "portal" / "clock.py"
        for hit in _wall_clock_calls(path)
    ]
    assert offenders == []


def test_a_manual_clock_stands_still_until_moved() -> None:
    start = datetime(2027, 3, 14, 6, 59, tzinfo=UTC)
    with use_clock(ManualClock(start)) as clock:
        assert now_utc() == start == now_utc()
        clock.advance(timedelta(minutes=2))
        assert now_utc() == start + timedelta(minutes=2)
    assert now_utc() > start - timedelta(days=3650)  # the real clock is back


@pytest.mark.usefixtures("app")
def test_moving_the_clock_expires_a_wave_and_sends_the_next() -> None:
    start = datetime(2030, 6, 3, 15, 0, tzinfo=UTC)
    with use_clock(ManualClock(start)) as clock:
        service = f.service(category="sequential_test")
        db.session.add(OfferPolicy(category="sequential_test", mode=OfferMode.SEQUENTIAL))
        slot = f.slot(start_at=start + timedelta(days=2), service=service)
        f.waitlist_entry(slot=slot, priority=5)
        f.waitlist_entry(slot=slot)
        (first,) = advance(slot.id).offers
        assert first.created_at == start
        assert advance(slot.id).reason == "wave in progress"

        clock.advance(timedelta(minutes=31))
        outcome = advance(slot.id)

        assert outcome.expired == 1 and outcome.wave == 2
        assert db.session.get(Offer, first.id).status == OfferStatus.EXPIRED
        (second,) = outcome.offers
        assert second.window_expires_at == start + timedelta(minutes=31 + 30)
