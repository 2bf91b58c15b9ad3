"""Phone parsing, zone detection and masking (pure functions, no database)."""

from __future__ import annotations

import pytest

from portal.services.phones import mask_phone, parse_phone, timezone_for_phone


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+1 212 555 0123", "+12125550123"),
        ("(310) 555-0142", "+13105550142"),
        ("212-555-0100", "+12125550100"),
        ("  1 (212) 555-0199  ", "+12125550199"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+1 800 555 0199", "+18005550199"),
    ],
)
def test_valid_numbers_become_e164(raw: str, e164: str) -> None:
    parsed = parse_phone(raw)
    assert parsed.valid
    assert parsed.e164 == e164
    assert parsed.reason is None
    assert parsed.message == ""


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("12345", "invalid_number"),
        ("+1 555 555 5555", "invalid_number"),  # 555 is not an area code
        ("+1 212 555 01234", "invalid_number"),
        ("call me", "not_a_number"),
        ("+999 1234 5678", "invalid_country_code"),
        ("+1 212 555 0123" + " " * 30 + "9", "too_long"),
    ],
)
def test_invalid_numbers_are_refused_with_a_reason(raw: str, reason: str) -> None:
    parsed = parse_phone(raw)
    assert not parsed.valid
    assert parsed.e164 is None
    assert parsed.reason == reason
    assert parsed.message


def test_national_numbers_are_read_in_the_given_region() -> None:
    assert parse_phone("020 7946 0958", region="GB").e164 == "+442079460958"


@pytest.mark.parametrize(
    ("e164", "zone"),
    [
        ("+12125550123", "America/New_York"),
        ("+13105550142", "America/Los_Angeles"),
        ("+442079460958", "Europe/London"),
        ("+18005550199", None),  # toll-free: dozens of zones
        ("+15555555555", None),  # Etc/Unknown
        ("not a number", None),
        (None, None),
        ("", None),
    ],
)
def test_zone_is_guessed_only_when_the_number_names_exactly_one(
    e164: str | None, zone: str | None
) -> None:
    assert timezone_for_phone(e164) == zone


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+12125550123", "+1•••••0123"),
        ("+442079460958", "+44•••••0958"),
        (None, ""),
        ("", ""),
    ],
)
def test_mask_keeps_only_country_code_and_last_four(e164: str | None, masked: str) -> None:
    assert mask_phone(e164) == masked


def test_mask_never_reveals_an_unparsable_value_whole() -> None:
    masked = mask_phone("garbage-12345678")
    assert "1234" not in masked
