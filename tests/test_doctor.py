"""`portal doctor` says what is wrong with a deployment; /healthz reports process liveness."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue, Worker
from rq.cron import CronScheduler

from portal.queue import redis_connection
from tests.conftest import TEST_SECRET


def _doctor(app_config: dict[str, object], **env: str) -> subprocess.CompletedProcess[str]:
    environ = os.environ | {
        "DATABASE_URL": str(app_config["SQLALCHEMY_DATABASE_URI"]),
        "REDIS_URL": str(app_config["REDIS_URL"]),
        "SECRET_KEY": TEST_SECRET,
        "PORTAL_ENV": "development",
    }
    return subprocess.run(
        [sys.executable, "-m", "portal.cli", "doctor"],
        env=environ | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def processes(app: Flask) -> Iterator[None]:
    """A registered RQ worker and a heartbeating cron scheduler, as the real ones register."""
    connection = redis_connection()
    worker = Worker([Queue("filling", connection=connection)], connection=connection)
    worker.register_birth()
    cron = CronScheduler(connection=connection, name="doctor-test-cron")
    cron.register_birth()
    cron.heartbeat()
    yield
    worker.register_death()
    cron.register_death()


def test_without_a_worker_or_cron_the_doctor_says_what_to_start(
    app: Flask, app_config: dict[str, object]
) -> None:
    result = _doctor(app_config)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "✓ database: reachable, migrated" in result.stdout
    assert "✓ redis: reachable" in result.stdout
    assert "✗ worker: no RQ worker is running: start `portal worker`" in result.stdout
    assert "✗ cron: no `portal cron` process is running" in result.stdout
    assert "! twilio: not configured: messages go to the outbox" in result.stdout


@pytest.mark.usefixtures("processes")
def test_with_a_worker_and_cron_alive_all_is_good(app_config: dict[str, object]) -> None:
    result = _doctor(app_config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ worker: 1 worker(s) alive" in result.stdout
    assert "✓ cron: one cron process alive" in result.stdout
    assert "All good." in result.stdout


def test_a_database_it_cannot_reach_is_named(app: Flask, app_config: dict[str, object]) -> None:
    url = str(app_config["SQLALCHEMY_DATABASE_URI"]).rsplit("/", 1)[0] + "/no_such_database"
    result = _doctor(app_config, DATABASE_URL=url)
    assert result.returncode == 1
    assert "✗ database: unreachable" in result.stdout


def test_production_settings_are_checked_before_anything(
    app: Flask, app_config: dict[str, object]
) -> None:
    result = _doctor(app_config, PORTAL_ENV="production", PUBLIC_BASE_URL="http://clinic.example")
    assert result.returncode == 1
    assert "✗ configuration: PUBLIC_BASE_URL must be https:// in production" in result.stdout
    assert "Traceback" not in result.stderr


def test_healthz_reports_worker_and_cron(client: FlaskClient, app: Flask) -> None:
    body = client.get("/healthz").get_json()
    assert body == {"database": "ok", "queue": "ok", "worker": "down", "cron": "down"}


@pytest.mark.usefixtures("processes")
def test_healthz_with_processes_alive(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["worker"] == "ok" and response.get_json()["cron"] == "ok"
