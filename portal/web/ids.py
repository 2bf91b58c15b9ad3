"""Ids from requests: URL parts, query strings and forms, all checked in one place.

Every primary key is a PostgreSQL ``integer``, so an id is 1..2^31-1 written in ASCII
digits without a leading zero. The ``<id:name>`` URL converter (registered on the app
by :func:`init_app`) refuses anything else, so the route does not match and the answer
is a 404 — no view ever sees an id the database would refuse. Query and form values
go through :func:`parse_id`.
"""

from __future__ import annotations

import re

from flask import Flask
from werkzeug.routing import BaseConverter, ValidationError

MAX_ID = 2**31 - 1
_ID_PATTERN = r"[1-9][0-9]{0,9}"  # ASCII only: "\d" would also take "٣"
_ID = re.compile(_ID_PATTERN)


def parse_id(raw: str | None) -> int | None:
    """Return ``raw`` as an id if it is one (1..2^31-1 in ASCII digits), else None."""
    if raw is None or not _ID.fullmatch(raw):
        return None
    value = int(raw)
    return value if value <= MAX_ID else None


class IdConverter(BaseConverter):
    """``<id:slot_id>``: a positive int32 in plain digits; anything else does not match."""

    regex = _ID_PATTERN
    weight = 50

    def to_python(self, value: str) -> int:
        ident = parse_id(value)
        if ident is None:
            raise ValidationError()
        return ident

    def to_url(self, value: object) -> str:
        return str(int(value))  # type: ignore[call-overload]


def init_app(app: Flask) -> None:
    """Register the ``id`` converter (before any blueprint adds its routes)."""
    app.url_map.converters["id"] = IdConverter
