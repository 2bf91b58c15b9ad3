"""The log filter: no e-mail address or phone number reaches a log, in linear time."""

from __future__ import annotations

import logging
import re
import time
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parser  # type: ignore[attr-defined]

import pytest

from portal import logs
from portal.logs import MAX_LOGGED_CHARS, PiiFilter, loggable, mask_pii

HUNDRED_KB = 100_000


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("mail ana.lopez+spa@example.co.uk now", "mail [email] now"),
        ("call +12125550101.", "call [phone]."),
        ("call (212) 555-0101 or 212.555.0101", "call [phone] or [phone]"),
        ("slot 42 wave 3 id 1234567", "slot 42 wave 3 id 1234567"),
        ("a@b", "a@b"),
    ],
)
def test_mask_pii(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


def _unbounded_repeats(pattern: str) -> list[str]:
    """Return the repeats in ``pattern`` with no upper bound (``+``, ``*``, ``{n,}``)."""
    found: list[str] = []

    def walk(items: object) -> None:
        for op, arg in items:  # type: ignore[attr-defined]
            if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
                low, high, inner = arg
                if high == sre_constants.MAXREPEAT:
                    found.append(f"{{{low},}}")
                walk(inner)
            elif op == sre_constants.SUBPATTERN:
                walk(arg[-1])
            elif op == sre_constants.BRANCH:
                for branch in arg[1]:
                    walk(branch)

    walk(sre_parser.parse(pattern))
    return found


def test_every_repeat_in_the_masking_pattern_is_bounded() -> None:
    # With bounded repeats each start offset costs at most a constant number of steps,
    # so masking is linear in the message. `[\w.+-]+@` rescanned the rest of a 100 KB
    # field from every offset (28 s).
    assert _unbounded_repeats(r"[\w.+-]+@[\w-]+") == ["{1,}", "{1,}"]  # the checker works
    assert _unbounded_repeats(logs._PII.pattern) == []


@pytest.mark.parametrize(
    "field",
    [
        "a" * HUNDRED_KB,
        "1" * HUNDRED_KB,
        "a." * (HUNDRED_KB // 2),
        "a@" * (HUNDRED_KB // 2),
        "+" + "1" * HUNDRED_KB,
        ("x" * 64 + "@" + "y" * 63 + ".") * (HUNDRED_KB // 130),
    ],
    ids=["letters", "digits", "dots", "ats", "plus-digits", "near-addresses"],
)
def test_a_100_kb_field_is_masked_and_capped_quickly(field: str) -> None:
    started = time.perf_counter()
    shown = loggable(f"body={field}")
    mask_pii(field)
    assert time.perf_counter() - started < 1.0  # a guard only; the bound above is the proof
    assert len(shown) <= MAX_LOGGED_CHARS + 60
    assert shown.endswith("more characters not logged]")


def test_an_address_straddling_the_cut_is_masked_whole() -> None:
    address = "olivia.martin@example.com"
    text = "x " * ((MAX_LOGGED_CHARS - 10) // 2) + address + " tail" * 1000
    shown = loggable(text)
    assert "[email]" in shown
    assert not re.search(r"olivia|martin|example", shown)


def test_a_short_message_is_only_masked() -> None:
    assert loggable("to +12125550101") == "to [phone]"


def test_the_filter_caps_and_masks_a_record(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("portal.tests.logs")
    caplog.set_level(logging.INFO, logger="portal.tests.logs")
    caplog.handler.addFilter(PiiFilter())
    logger.info("inbound from %s: %s", "ana@example.com", "z" * HUNDRED_KB)
    [record] = caplog.records
    assert record.getMessage().startswith("inbound from [email]: zzz")
    assert len(record.getMessage()) < MAX_LOGGED_CHARS + 60


def test_a_traceback_is_masked_as_well_as_the_message() -> None:
    import io
    import logging

    from portal.logs import protect

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    protect(handler)
    logger = logging.getLogger("tests.traceback")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError("could not text +12125550142 or mail ana@example.com")
        except ValueError:
            logger.exception("sending failed")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    written = stream.getvalue()
    assert "Traceback" in written and "ValueError" in written
    assert "+12125550142" not in written and "ana@example.com" not in written
    assert "[phone]" in written and "[email]" in written
