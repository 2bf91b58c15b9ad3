"""One clock for every "now" in the portal, so tests and the fill simulation can move time.

Services, jobs and views call ``now_utc()`` (re-exported by ``portal.db``); nothing else
in ``portal/`` or ``jobs/`` reads the wall clock (a test checks). The clock is
per process: ``use_clock(ManualClock(start))`` swaps it for a block, and
``ManualClock.advance`` moves it.

``system_seconds()`` is the one exception, and says so: rate-limit windows are kept by
Redis in real time, so a "retry after" must be measured against real time too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current instant, timezone-aware UTC."""
        ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that stands still until moved (tests, the fill simulation)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> None:
        with self._lock:
            self._now = instant.astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now


_clock: Clock = SystemClock()


def now_utc() -> datetime:
    """Return the current instant (timezone-aware UTC) from the process's clock."""
    return _clock.now()


def current_clock() -> Clock:
    return _clock


def set_clock(clock: Clock) -> Clock:
    """Install ``clock`` for this process; return the one it replaces."""
    global _clock
    previous, _clock = _clock, clock
    return previous


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Run a block with ``clock`` as the process's clock."""
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)


def system_seconds() -> float:
    """Real seconds since the epoch: only for windows kept outside the portal (Redis)."""
    return time.time()
