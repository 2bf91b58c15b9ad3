"""Money arithmetic in integer cents: percentages, discounts and fee text.

Rounding is stated once: a percentage of an amount is rounded half up to the cent
("50%" of $333.33 is 16,666.5 cents → 16,667). Fees are written as "$50", "$12.50",
"$1,000" (fixed) or "50%" (a whole percentage of the price, 0–100); anything else is
refused with a message that says what is accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from portal.models.enums import FeeKind

_DOLLARS = re.compile(r"^\$(?P<whole>[0-9]{1,3}(?:,[0-9]{3})*|[0-9]+)(?:\.(?P<cents>[0-9]{2}))?$")
_PERCENT = re.compile(r"^(?P<value>[0-9]{1,3}) ?%$")
#: No fee above this (a typo guard: $100,000.00).
MAX_FEE_CENTS = 10_000_000


class FeeParseError(ValueError):
    """The text is not a fee the portal understands."""


@dataclass(frozen=True)
class Fee:
    kind: FeeKind
    value: int  # a percentage (0–100) or cents

    def of(self, price_cents: int) -> int:
        """The fee for a service of ``price_cents``: never more than the price."""
        if self.kind == FeeKind.PERCENT:
            return percent_of(price_cents, self.value)
        return min(self.value, price_cents)


def percent_of(cents: int, percent: int) -> int:
    """``percent`` % of ``cents``, rounded half up to a whole cent."""
    if cents < 0 or not 0 <= percent <= 100:
        raise ValueError("percent_of takes cents >= 0 and a percentage 0-100")
    return (cents * percent * 2 + 100) // 200


def discounted(cents: int, percent: int | None) -> int:
    """The price after a ``percent`` % discount (the discount itself rounded half up)."""
    return cents - percent_of(cents, percent) if percent else cents


def parse_fee(text: str) -> Fee:
    """Read "$50", "$12.50" or "50%"; raise ``FeeParseError`` for anything else."""
    raw = (text or "").strip()
    if match := _PERCENT.fullmatch(raw):
        value = int(match["value"])
        if value > 100:
            raise FeeParseError("A percentage fee is at most 100%.")
        return Fee(FeeKind.PERCENT, value)
    if match := _DOLLARS.fullmatch(raw):
        cents = int(match["whole"].replace(",", "")) * 100 + int(match["cents"] or 0)
        if cents > MAX_FEE_CENTS:
            raise FeeParseError("A fixed fee is at most $100,000.00.")
        return Fee(FeeKind.FIXED, cents)
    raise FeeParseError(
        'Write a fee as a dollar amount ("$50" or "$12.50") or a percentage ("50%").'
    )


def fee_text(kind: FeeKind, value: int) -> str:
    """A fee as staff write it: "50%" or "$50.00" (the inverse of ``parse_fee``)."""
    if kind == FeeKind.PERCENT:
        return f"{value}%"
    dollars, cents = divmod(value, 100)
    return f"${dollars:,}.{cents:02d}"
