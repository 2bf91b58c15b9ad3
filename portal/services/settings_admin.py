"""Editing the tunables: every field of ``settings.Settings``, generically.

The form is built from the dataclass itself — its fields, their types and the ``#:``
comment above each — so a tunable added to ``Settings`` appears here with no other
change. Values are validated by type (whole numbers, numbers, "HH:MM" clock times,
lists of words, per-key maps); a few fields add a rule of their own (``EXTRA_RULES``).
Every change is stored as a ``Setting`` override and audited with before and after.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import cache
from typing import Any, get_args, get_origin, get_type_hints

from pydantic import TypeAdapter, ValidationError

from portal.models.enums import Purpose
from portal.services import settings as settings_module
from portal.services.audit import Action, Actor, record
from portal.services.errors import DomainError
from portal.services.presentation import parse_money
from portal.services.settings import Settings, set_setting, settings

MAX_NUMBER = 1_000_000
MAX_TEXT = 200
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_WORD = re.compile(r"[a-z][a-z0-9_]*")


class SettingErrors(DomainError):
    """Some fields were refused; ``errors`` maps each field's name to why."""

    default_code = "invalid_settings"

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("Some settings were not saved: see the messages beside them.")
        self.errors = errors


def _purposes(values: list[str]) -> str | None:
    unknown = sorted(set(values) - {p.value for p in Purpose})
    return f"Unknown message kinds: {', '.join(unknown)}." if unknown else None


def _clock_pairs(values: dict[str, dict[str, str]]) -> str | None:
    for where, hours in values.items():
        if set(hours) != {"start", "end"} or not all(_HHMM.fullmatch(v) for v in hours.values()):
            return f"{where}: give start and end as HH:MM."
    return None


def _lead_hours(values: dict[str, list[int]]) -> str | None:
    for category, hours in values.items():
        if not hours or not all(1 <= h <= 24 * 60 for h in hours):
            return f"{category}: give hours before the visit, each from 1 to 1440."
    return None


#: Rules beyond the type's, by field name: return a message, or None when fine.
EXTRA_RULES: dict[str, Callable[[Any], str | None]] = {
    "quiet_hours_escalate": _purposes,
    "non_urgent_purposes": _purposes,
    "quiet_hours_overrides": _clock_pairs,
    "reminder_cadence_hours": _lead_hours,
}


@dataclass(frozen=True)
class SettingField:
    """One tunable as the form shows it."""

    name: str
    label: str
    help: str
    kind: str  # "int", "money", "float", "text", "clock", "words", "bool", "map" or "json"
    value: Any
    default: Any
    item_kind: str = ""  # for maps: the kind of each value
    annotation: Any = None  # the declared type (checks "json" values)

    @property
    def keys(self) -> list[str]:
        """A map's keys: the defaults' in their order, then any added since."""
        if self.kind != "map":
            return []
        return list(self.default) + sorted(set(self.value) - set(self.default))

    @property
    def changed(self) -> bool:
        return self.value != self.default


@cache
def _comments() -> dict[str, str]:
    """The ``#:`` comment lines above each field of ``Settings``, joined."""
    found: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(settings_module.Settings).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        match = re.match(r"(\w+)\s*:", stripped)
        if match and pending:
            # References for engineers ("(SPEC §3.5)") mean nothing on the page.
            found[match.group(1)] = re.sub(r"\s*\(SPEC[^)]*\)", "", " ".join(pending))
        pending = []
    return found


_SCALARS = (bool, int, float, str)


def _kind(name: str, annotation: Any, default: Any) -> tuple[str, str]:
    """The form kind of a field; amounts (``*_cents``) are typed in dollars.

    Maps of plain values get one input per key, lists of words a comma list, anything
    richer (maps of maps or of lists) a JSON text checked against the field's type.
    """
    origin = get_origin(annotation)
    if origin is dict:
        value_type = get_args(annotation)[1]
        if value_type not in _SCALARS:
            return "json", ""
        return "map", _kind(name, value_type, next(iter(default.values()), None))[0]
    if origin is list:
        return ("words", "") if get_args(annotation) == (str,) else ("json", "")
    if annotation is bool:
        return "bool", ""
    if annotation is int:
        return ("money" if name.endswith("_cents") else "int"), ""
    if annotation is float:
        return "float", ""
    if annotation is not str:
        return "json", ""
    if isinstance(default, str) and _HHMM.fullmatch(default):
        return "clock", ""
    return "text", ""


def label_for(name: str) -> str:
    """ "deposit_cents" → "Deposit" (the amount is shown in dollars), else the words."""
    return name.removesuffix("_cents").replace("_", " ").capitalize()


def setting_fields(current: Settings | None = None) -> list[SettingField]:
    """Every tunable with its label, help text, current value and default."""
    current = current or settings()
    defaults = Settings()
    hints = get_type_hints(Settings)
    result = []
    for f in fields(Settings):
        default = getattr(defaults, f.name)
        kind, item_kind = _kind(f.name, hints[f.name], default)
        if (
            kind == "map"
            and item_kind == "text"
            and all(_HHMM.fullmatch(v) for v in default.values())
        ):
            item_kind = "clock"
        result.append(
            SettingField(
                name=f.name,
                label=label_for(f.name),
                help=_comments().get(f.name, ""),
                kind=kind,
                value=getattr(current, f.name),
                default=default,
                item_kind=item_kind,
                annotation=hints[f.name],
            )
        )
    return result


def _scalar(kind: str, raw: str, default: Any) -> Any:
    text = raw.strip()
    if kind == "bool":
        if text not in ("yes", "no"):
            raise ValueError("Choose yes or no.")
        return text == "yes"
    if kind == "int":
        if not re.fullmatch(r"-?[0-9]{1,9}", text):
            raise ValueError("Enter a whole number.")
        value = int(text)
        low = -MAX_NUMBER if isinstance(default, int) and default < 0 else 0
        if not low <= value <= MAX_NUMBER:
            raise ValueError(f"Enter a number from {low} to {MAX_NUMBER:,}.")
        return value
    if kind == "float":
        try:
            value = float(text)
        except ValueError:
            raise ValueError("Enter a number.") from None
        if not math.isfinite(value) or not 0 <= value <= MAX_NUMBER:
            raise ValueError(f"Enter a number from 0 to {MAX_NUMBER:,}.")
        return int(value) if value.is_integer() and isinstance(default, int) else value
    if kind == "money":
        return parse_money(text)  # its ValueError says how to type an amount
    if kind == "clock":
        if not _HHMM.fullmatch(text):
            raise ValueError("Enter a time as HH:MM, e.g. 08:00.")
        return text
    if not text or len(text) > MAX_TEXT or "\x00" in text:
        raise ValueError(f"Enter 1 to {MAX_TEXT} characters.")
    return text


def parse_field(spec: SettingField, form: Mapping[str, str]) -> Any:
    """Read ``spec``'s value from the form (``s-<name>``, maps ``s-<name>-<key>``)."""
    key = f"s-{spec.name}"
    if spec.kind == "map":
        value = {}
        for item in spec.keys:
            item_default = spec.default.get(item, next(iter(spec.default.values()), 0))
            try:
                value[item] = _scalar(spec.item_kind, form.get(f"{key}-{item}", ""), item_default)
            except ValueError as exc:
                raise ValueError(f"{item.replace('_', ' ')}: {exc}") from None
    elif spec.kind == "json":
        value = _json_value(spec, form.get(key, ""))
    elif spec.kind == "words":
        value = [w for w in re.split(r"[\s,]+", form.get(key, "").strip().lower()) if w]
        bad = [w for w in value if not _WORD.fullmatch(w)]
        if bad:
            raise ValueError(f"Use plain words separated by commas (not {bad[0]!r}).")
        value = list(dict.fromkeys(value))
    else:
        value = _scalar(spec.kind, form.get(key, ""), spec.default)
    rule = EXTRA_RULES.get(spec.name)
    problem = rule(value) if rule else None
    if problem:
        raise ValueError(problem)
    return value


def _json_value(spec: SettingField, raw: str) -> Any:
    """Read a JSON value and check it against the field's declared type."""
    try:
        return TypeAdapter(spec.annotation).validate_json(raw.strip() or "null")
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = " → ".join(str(part) for part in first["loc"])
        detail = f"{where}: {first['msg']}" if where else first["msg"]
        raise ValueError(f"Enter JSON of the right shape ({detail}).") from None


class _SettingEntity:
    """What the audit trail names for a setting (keyed by name, no numeric id)."""

    __tablename__ = "setting"
    id = None


def save_settings(form: Mapping[str, str], actor: Actor) -> list[str]:
    """Validate every field; store and audit the changed ones; return their names.

    Nothing is stored if any field is refused (``SettingErrors``).
    """
    specs = setting_fields()
    parsed: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in specs:
        try:
            parsed[spec.name] = parse_field(spec, form)
        except ValueError as exc:
            errors[spec.name] = str(exc)
    if errors:
        raise SettingErrors(errors)
    changed = []
    for spec in specs:
        new = parsed[spec.name]
        if new == spec.value:
            continue
        set_setting(spec.name, new)
        record(
            actor,
            Action.SETTING_CHANGED,
            _SettingEntity(),
            before={"key": spec.name, "value": spec.value},
            after={"key": spec.name, "value": new},
        )
        changed.append(spec.name)
    return changed
