"""Editing the per-category policy rows (``OfferPolicy``, ``CancellationPolicy``) generically.

The fields come from each model's columns (all but id, category and timestamps), so a
column added to a policy appears on the settings page without more work. Whole numbers,
yes/no and enum columns are understood; the table's CHECK constraints are the last word
(a refused combination is reported by the constraint's name, or its explanation below).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal.db import db, now_utc
from portal.models import CancellationPolicy, OfferPolicy
from portal.services.audit import Action, Actor, record, snapshot
from portal.services.settings import FillPolicy
from portal.services.settings_admin import SettingErrors

MAX_NUMBER = 100_000
_SKIP = frozenset({"id", "category", "created_at", "updated_at"})

#: The policy tables the settings page edits: key → (model, audit action, title).
POLICIES: dict[str, tuple[type, Action, str]] = {
    "offer": (OfferPolicy, Action.OFFER_POLICY_CHANGED, "How slots are offered"),
    "cancellation": (
        CancellationPolicy,
        Action.CANCELLATION_POLICY_CHANGED,
        "Cancellation policy",
    ),
}

#: What a broken CHECK constraint means, for the message beside the form.
CONSTRAINT_TEXT = {
    "tiers_ordered": "The full-charge hours must not be more than the notice hours.",
    "percent_at_most_100": "A percentage fee can be at most 100.",
    "wave_size_positive": "A wave must have at least one patient.",
    "window_positive": "The response window must be at least one minute.",
    "near_window_positive": "The near-slot window must be at least one minute.",
}

#: Defaults for a category with no row yet, where a column has none of its own.
FALLBACK_DEFAULTS: dict[str, dict[str, Any]] = {
    "offer": {
        f: getattr(FillPolicy(), f)
        for f in ("mode", "wave_size", "window_minutes", "near_window_minutes")
    },
    "cancellation": {"late_fee_value": 50},
}


@dataclass(frozen=True)
class PolicyColumn:
    name: str
    label: str
    kind: str  # "int", "bool" or "choice"
    choices: tuple[str, ...] = ()


def columns(key: str) -> list[PolicyColumn]:
    """The editable columns of a policy table, in table order."""
    model = POLICIES[key][0]
    result = []
    for column in sa.inspect(model).columns:
        if column.key in _SKIP:
            continue
        label = column.key.replace("_", " ").capitalize()
        enum_class = getattr(column.type, "enum_class", None)
        if enum_class is not None:
            choices = tuple(m.value for m in enum_class)
            result.append(PolicyColumn(column.key, label, "choice", choices))
        elif isinstance(column.type, sa.Boolean):
            result.append(PolicyColumn(column.key, label, "bool"))
        else:
            result.append(PolicyColumn(column.key, label, "int"))
    return result


def _defaults(key: str) -> dict[str, Any]:
    model = POLICIES[key][0]
    values: dict[str, Any] = {}
    for column in columns(key):
        default = sa.inspect(model).columns[column.name].default
        if default is not None and default.is_scalar:
            values[column.name] = default.arg
        elif column.kind == "choice":
            values[column.name] = column.choices[0]
        elif column.kind == "bool":
            values[column.name] = False
        else:
            values[column.name] = 0
    values |= FALLBACK_DEFAULTS.get(key, {})
    return {k: v.value if isinstance(v, Enum) else v for k, v in values.items()}


def rows(key: str, categories: list[str]) -> dict[str, tuple[dict[str, Any], bool]]:
    """Each category's values and whether a row exists (else the defaults are shown)."""
    model = POLICIES[key][0]
    stored = {r.category: r for r in db.session.scalars(sa.select(model))}
    names = [c.name for c in columns(key)]
    result = {}
    for category in sorted(set(categories) | set(stored)):
        row = stored.get(category)
        if row is None:
            result[category] = (_defaults(key), False)
        else:
            values = {n: getattr(row, n) for n in names}
            result[category] = (
                {k: v.value if isinstance(v, Enum) else v for k, v in values.items()},
                True,
            )
    return result


def _parse(column: PolicyColumn, raw: str | None) -> Any:
    text = (raw or "").strip()
    if column.kind == "bool":
        return text in ("1", "on", "true", "yes")
    if column.kind == "choice":
        if text not in column.choices:
            raise ValueError(f"Choose one of: {', '.join(column.choices)}.")
        return text
    if not re.fullmatch(r"[0-9]{1,6}", text) or int(text) > MAX_NUMBER:
        raise ValueError(f"Enter a whole number from 0 to {MAX_NUMBER:,}.")
    return int(text)


def save_policy(key: str, category: str, form: Mapping[str, str], actor: Actor) -> bool:
    """Validate and store one category's row (created if missing); False if unchanged."""
    model, action, _title = POLICIES[key]
    cols = columns(key)
    values, errors = {}, {}
    for column in cols:
        try:
            values[column.name] = _parse(column, form.get(column.name))
        except ValueError as exc:
            errors[column.name] = str(exc)
    if errors:
        raise SettingErrors(errors)
    row = db.session.scalar(sa.select(model).where(model.category == category))
    names = [c.name for c in cols]
    before = snapshot(row, *names) if row is not None else None
    if row is None:
        row = model(category=category, created_at=now_utc())
        db.session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", "") or ""
        rule = constraint.removeprefix(f"ck_{model.__tablename__}_")
        message = CONSTRAINT_TEXT.get(
            rule, f"These values break the rule “{rule.replace('_', ' ')}”."
        )
        raise SettingErrors({"__all__": message}) from None
    after = snapshot(row, *names)
    if before == after:
        return False
    record(actor, action, row, before=before, after=after | {"category": category})
    return True
