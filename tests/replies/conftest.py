"""Inbound texts go through the real signed webhook (fake Twilio credentials)."""

from __future__ import annotations

from tests.notify.conftest import _quiet_hours_off, providers, scene  # noqa: F401 (fixtures)
