"""Running calls at the same instant, each in its own thread, app context and session."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import sqlalchemy as sa
from flask import Flask

from portal.db import db
from portal.services.booking import lost_race
from portal.services.errors import DomainError
from portal.services.integrity import find_violations

Call = Callable[[], str] | tuple[Callable[[], None], Callable[[], str]]


def race(
    app: Flask, calls: list[Call], *, commit: bool = True, jitter: float = 0.0
) -> Counter[str]:
    """Run every call at once (a barrier), commit each, and count the outcomes.

    A call may be a ``(prepare, call)`` pair: ``prepare`` runs in the same session
    before the barrier (e.g. loading the row a view would have loaded first).
    An outcome is what the call returned, a ``DomainError``'s code (a lost race the
    product answers), or ``error:…`` for anything else, so a failure says what broke.
    ``jitter`` (seconds) delays each call by a random fraction of it after the barrier,
    so every interleaving gets its turn over many rounds.
    """
    barrier = threading.Barrier(len(calls))
    results: list[str] = []
    lock = threading.Lock()

    def run(item: Call) -> None:
        prepare, call = item if isinstance(item, tuple) else (None, item)
        with app.app_context():
            if prepare is not None:
                prepare()
            barrier.wait()
            if jitter:
                time.sleep(random.random() * jitter)
            try:
                outcome = call()
                if commit:
                    db.session.commit()
            except DomainError as exc:
                db.session.rollback()
                outcome = exc.code
            except sa.exc.DBAPIError as exc:
                db.session.rollback()
                conflict = lost_race(exc)
                outcome = conflict.code if conflict else f"error:{type(exc).__name__}:{exc}"
            except Exception as exc:  # reported, so a failure says what went wrong
                db.session.rollback()
                outcome = f"error:{type(exc).__name__}:{exc}"
            finally:
                db.session.remove()
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == len(calls), "a racing thread did not finish"
    return Counter(results)


def assert_consistent() -> None:
    """No slot's status disagrees with its bookings (the SPEC §2 invariant)."""
    db.session.expire_all()
    violations = find_violations()
    assert violations == [], violations


def errors(outcomes: Counter[str]) -> list[str]:
    """The outcomes that are neither a return value nor an answered conflict."""
    return [o for o in outcomes if o.startswith("error:")]
