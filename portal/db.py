"""Database foundations: the session, naming convention, UTC column type and enums.

``now_utc`` is the clock's (``portal.clock``), re-exported here for the models' defaults.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from portal.clock import now_utc

__all__ = ["db", "enum_column", "insert_rows", "now_utc"]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamptz column that only accepts aware datetimes and always returns UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


def enum_column(enum_cls: type[enum.StrEnum], name: str) -> sa.Enum:
    """Store a StrEnum as VARCHAR guarded by a named CHECK constraint."""
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_cls),
        values_callable=lambda cls: [m.value for m in cls],
        validate_strings=True,
    )


class PkMixin:
    id: Mapped[int] = mapped_column(primary_key=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=now_utc, onupdate=now_utc, nullable=False
    )


def insert_rows(
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: Sequence[str] = ("id",),
    skip_conflicts_on: Sequence[str] | None = None,
) -> list[sa.Row[Any]]:
    """Insert many rows in one statement whose text does not grow with them.

    ``INSERT … SELECT unnest(:col_a), unnest(:col_b), …``: one array parameter per
    column (PostgreSQL unnests same-length arrays side by side, in order), so 5 rows or
    500 are the same short statement — no statement text the size of the batch to build,
    parse and send, as a multi-row ``VALUES`` would be. Every row names the same columns;
    enums go as their values, JSONB as JSON text. ``skip_conflicts_on``: the columns of a
    unique index whose duplicates are left out (``ON CONFLICT DO NOTHING``). The session
    is flushed first, so the rows follow whatever the transaction did before. Returns the
    ``returning`` columns of the rows written, in no particular order.
    """
    if not rows:
        return []
    db.session.flush()  # what the transaction did before comes first (ids, triggers)
    names = list(rows[0])
    columns = []
    for name in names:
        column = table.c[name]
        values = [row[name] for row in rows]
        if isinstance(column.type, JSONB):
            texts = [None if v is None else json.dumps(v) for v in values]
            array = sa.bindparam(f"rows_{name}", texts, type_=ARRAY(sa.Text()))
            columns.append(sa.cast(sa.func.unnest(array), JSONB).label(name))
            continue
        if isinstance(column.type, sa.Enum):
            values = [None if v is None else getattr(v, "value", v) for v in values]
            item_type: Any = sa.Text()
        elif isinstance(column.type, sa.String):
            # As text: the assignment to a VARCHAR(n) column then refuses a value too long
            # (an explicit cast to VARCHAR(n)[] would silently cut it).
            item_type = sa.Text()
        else:
            item_type = column.type
        array = sa.bindparam(f"rows_{name}", values, type_=ARRAY(item_type))
        columns.append(sa.func.unnest(array).label(name))
    statement = insert(table).from_select(names, sa.select(*columns))
    if skip_conflicts_on is not None:
        statement = statement.on_conflict_do_nothing(index_elements=list(skip_conflicts_on))
    if returning:
        return list(db.session.execute(statement.returning(*(table.c[n] for n in returning))).all())
    db.session.execute(statement)
    return []
