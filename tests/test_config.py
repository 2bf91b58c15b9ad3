"""Configuration from the environment, and what production refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.config import ConfigError, load_config, validate_config

PROD = {
    "PORTAL_ENV": "production",
    "DATABASE_URL": "postgresql+psycopg://db/portal",
    "REDIS_URL": "redis://cache:6379/0",
    "SECRET_KEY": "x" * 48,
    "PUBLIC_BASE_URL": "https://spa.example",
}


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("SECRET_KEY", "SECRET_KEY"),
        ("PUBLIC_BASE_URL", "PUBLIC_BASE_URL"),
        ("REDIS_URL", "REDIS_URL"),
        ("DATABASE_URL", "DATABASE_URL"),
    ],
)
def test_production_refuses_missing_settings(tmp_path: Path, missing: str, message: str) -> None:
    env = {k: v for k, v in PROD.items() if k != missing}
    with pytest.raises(ConfigError, match=message):
        validate_config(load_config(tmp_path, env))
    assert not (tmp_path / "secret_key").exists()  # no dev secret invented in production


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("SECRET_KEY", "short", "at least 32"), ("PUBLIC_BASE_URL", "http://spa.example", "https")],
)
def test_production_refuses_weak_settings(
    tmp_path: Path, key: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(load_config(tmp_path, PROD | {key: value}))


def test_production_turns_on_secure_cookies(tmp_path: Path) -> None:
    config = load_config(tmp_path, PROD)
    validate_config(config)
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]
    assert config["SESSION_COOKIE_HTTPONLY"] and config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_development_generates_one_secret_and_keeps_it(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql+psycopg://db/portal"}
    first = load_config(tmp_path, env)["SECRET_KEY"]
    second = load_config(tmp_path, env)["SECRET_KEY"]
    assert first == second and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert not load_config(tmp_path, env)["SESSION_COOKIE_SECURE"]


@pytest.mark.parametrize(
    ("redis_url", "expected"),
    [
        ("unix:///tmp/r.sock", "redis+unix:///tmp/r.sock"),
        ("redis://127.0.0.1:6379/3", "redis://127.0.0.1:6379/3"),
        ("", "memory://"),
    ],
)
def test_rate_limits_share_the_jobs_redis(tmp_path: Path, redis_url: str, expected: str) -> None:
    config = load_config(tmp_path, {"REDIS_URL": redis_url, "DATABASE_URL": "x"})
    assert config["RATELIMIT_STORAGE_URI"] == expected
