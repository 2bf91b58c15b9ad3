"""RQ entry points: small functions that take ids, load rows, call a service, commit.

``job_context`` is the one place that gives jobs an app context: inside a worker
started by ``portal worker`` the app already exists; elsewhere one is created once per
process (never at import time).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from flask import Flask, has_app_context

P = ParamSpec("P")
R = TypeVar("R")

_app: Flask | None = None


@contextmanager
def job_context() -> Iterator[None]:
    """Run the body inside an app context and leave the session clean afterwards."""
    from portal.db import db
    from portal.services.settings import forget_cached_settings

    if has_app_context():
        forget_cached_settings()  # the worker's context outlives jobs; settings may change
        try:
            yield
        finally:
            db.session.rollback()
        return
    global _app
    if _app is None:
        from portal import create_app

        _app = create_app()
    with _app.app_context():
        try:
            yield
        finally:
            db.session.rollback()
            db.session.remove()


def job(func: Callable[P, R]) -> Callable[P, R]:
    """Wrap an RQ job function so it runs with the app and a fresh session."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with job_context():
            return func(*args, **kwargs)

    return wrapper
