"""The acceptance-estimate calibration page (predicted against observed, by decile)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models.enums import OfferStatus
from portal.services.acceptance_calibration import MIN_OFFERS, calibration
from tests import factories as f


def _answered(n: int, predicted: float, accepted_every: int) -> None:
    for i in range(n):
        slot = f.slot(start_at=now_utc() - timedelta(days=3, minutes=i))
        status = OfferStatus.ACCEPTED if i % accepted_every == 0 else OfferStatus.EXPIRED
        f.offer(slot=slot, status=status, predicted_acceptance=predicted)


def test_the_page_waits_for_enough_history(signed_in: FlaskClient) -> None:
    _answered(5, 0.2, 2)
    page = signed_in.get("/staff/analytics/acceptance")
    assert page.status_code == 200
    assert f"Not enough history yet: 5 of the {MIN_OFFERS}" in " ".join(page.text.split())


@pytest.mark.usefixtures("app")
def test_deciles_set_the_prediction_beside_what_happened() -> None:
    _answered(60, 0.1, 10)  # predicted 10%, one in ten accepted
    _answered(60, 0.5, 2)  # predicted 50%, one in two accepted
    f.offer(slot=f.slot(), predicted_acceptance=0.9)  # pending: not an answer yet
    result = calibration(now_utc())
    assert result.enough and result.offers == 120
    assert [d.offers for d in result.deciles] == [12] * 10
    assert result.deciles[0].predicted == pytest.approx(0.1)
    assert result.deciles[0].observed == pytest.approx(0.1, abs=0.1)
    assert result.deciles[-1].predicted == pytest.approx(0.5)
    assert result.deciles[-1].observed == pytest.approx(0.5, abs=0.2)
    assert 0 < result.brier < 0.3


def test_the_page_shows_ten_rows_once_there_is_history(signed_in: FlaskClient) -> None:
    _answered(MIN_OFFERS, 0.3, 3)
    db.session.commit()
    page = signed_in.get("/staff/analytics/acceptance").text
    assert page.count("points</td>") == 10
    assert "30.0%" in page


def test_the_page_needs_a_signed_in_member_of_staff(client: FlaskClient) -> None:
    assert client.get("/staff/analytics/acceptance").status_code in (302, 303)
