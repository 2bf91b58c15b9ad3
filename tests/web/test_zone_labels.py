"""Zone labels are cached (a page lists every zone), yet change at each zone's transition."""

from __future__ import annotations

from datetime import UTC, datetime

from portal.services.presentation import zone_choices, zone_label, zone_options_html

BEFORE = datetime(2026, 3, 8, 6, 59, tzinfo=UTC)  # 01:59 EST in Detroit
AFTER = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT


def test_a_label_names_the_zone_as_it_is_at_that_instant() -> None:
    assert zone_label("America/Detroit", BEFORE) == "Detroit · EST (UTC-05:00)"
    assert zone_label("America/Detroit", AFTER) == "Detroit · EDT (UTC-04:00)"
    assert zone_label("Asia/Kathmandu", AFTER) == "Kathmandu (UTC+05:45)"


def test_the_cached_list_of_every_zone_changes_at_a_transition() -> None:
    for at, label in ((BEFORE, "Detroit · EST (UTC-05:00)"), (AFTER, "Detroit · EDT (UTC-04:00)")):
        _, others = zone_choices(at, "America/New_York")
        assert ("America/Detroit", label) in others
        assert f'<option value="America/Detroit">{label}</option>' in zone_options_html(
            at, "America/New_York"
        )
    # The zones listed first are not repeated below.
    assert 'value="America/Detroit"' not in zone_options_html(AFTER, "America/Detroit")
