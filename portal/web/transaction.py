"""One request, one transaction: run the services, commit once, and say who won a race.

Every view that changes state runs its service calls through ``commit_or_conflict``.
A deadlock or serialization failure (PostgreSQL chose us to give way) reruns the whole
action from a clean session, a couple of times; any other lost race — a unique index,
the booking-consistency check — becomes the ``Conflict`` that ``booking.lost_race``
names, so pages and the API answer 409 with a stable code, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from portal.db import db
from portal.services.booking import lost_race
from portal.services.errors import DomainError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Reruns after a deadlock or serialization failure before answering 409 ``busy_retry``.
RETRIES = 2


def commit_or_conflict(action: Callable[[], T], *, retries: int = RETRIES) -> T:
    """Run ``action`` and commit; roll back and raise a ``DomainError`` if it cannot stand.

    ``action`` must load what it needs by id (it may run again after a rollback).
    """
    attempt = 0
    while True:
        try:
            result = action()
            db.session.commit()
            return result
        except DomainError:
            db.session.rollback()
            raise
        except sa.exc.DBAPIError as exc:
            db.session.rollback()
            conflict = lost_race(exc)
            if conflict is None:
                raise
            if conflict.code == "busy_retry" and attempt < retries:
                attempt += 1
                log.info("transaction rerun after %s (attempt %s)", conflict.code, attempt)
                continue
            raise conflict from None
