"""Configuration from the environment (see CONTRACT.md), validated once at start-up."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:5000"


class ConfigError(RuntimeError):
    """The configuration is unsafe or incomplete; the message says what to set."""


def _dev_secret_key(instance_path: Path) -> str:
    """Return the development secret, generating it once into the instance folder."""
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting together must agree on one key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _flag(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def load_config(instance_path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config mapping from environment variables."""
    env = dict(os.environ if env is None else env)
    portal_env = env.get("PORTAL_ENV", "development")
    production = portal_env == "production"
    secret_key = env.get("SECRET_KEY") or (None if production else _dev_secret_key(instance_path))
    redis_url = env.get("REDIS_URL", "")
    return {
        "PORTAL_ENV": portal_env,
        "SECRET_KEY": secret_key,
        "PUBLIC_BASE_URL": env.get(
            "PUBLIC_BASE_URL", "" if production else DEFAULT_PUBLIC_BASE_URL
        ),
        "SQLALCHEMY_DATABASE_URI": env.get("DATABASE_URL", ""),
        # Kept open: one connection per request thread (WEB_THREADS, the Procfile's gunicorn
        # --threads); SQLAlchemy's overflow covers the rest. See docs/performance.md.
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_pre_ping": True,
            "pool_size": int(env.get("WEB_THREADS", "4")),
        },
        "REDIS_URL": redis_url,
        # Flask-Limiter shares Redis with RQ; memory only when nothing else is configured.
        "RATELIMIT_STORAGE_URI": limiter_storage_uri(redis_url),
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_ENABLED": _flag("RATELIMIT_ENABLED", True),
        # Jobs go to RQ; tests may run them inline with a real Redis still configured.
        "RQ_INLINE": _flag("RQ_INLINE", False),
        "TWILIO_ACCOUNT_SID": env.get("TWILIO_ACCOUNT_SID", ""),
        "TWILIO_AUTH_TOKEN": env.get("TWILIO_AUTH_TOKEN", ""),
        "TWILIO_FROM_NUMBER": env.get("TWILIO_FROM_NUMBER", ""),
        "TWILIO_API_BASE": env.get("TWILIO_API_BASE", ""),
        "SMTP_URL": env.get("SMTP_URL", ""),
        "STRIPE_SECRET_KEY": env.get("STRIPE_SECRET_KEY", ""),
        "STRIPE_WEBHOOK_SECRET": env.get("STRIPE_WEBHOOK_SECRET", ""),
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE", ""),
        "STRIPE_TIMEOUT_SECONDS": float(env.get("STRIPE_TIMEOUT_SECONDS", "10")),
        # Provider calls never hold a worker for long (the chain escalates instead).
        "TWILIO_TIMEOUT_SECONDS": float(env.get("TWILIO_TIMEOUT_SECONDS", "10")),
        "SMTP_TIMEOUT_SECONDS": float(env.get("SMTP_TIMEOUT_SECONDS", "15")),
        "MAIL_FROM": env.get("MAIL_FROM", "Waitlist <no-reply@portal.invalid>"),
        "PRACTICE_NAME": env.get("PRACTICE_NAME", "Glow Medical Spa"),
        # The number patients are told to call when a page cannot name their location.
        "CLINIC_PHONE": env.get("CLINIC_PHONE", ""),
        "SESSION_COOKIE_SECURE": production,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        "STAFF_IDLE_MINUTES": int(env.get("STAFF_IDLE_MINUTES", "15")),
        "STAFF_SESSION_HOURS": int(env.get("STAFF_SESSION_HOURS", "12")),
        # The cookie dies with the absolute session lifetime (checked server-side too).
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=int(env.get("STAFF_SESSION_HOURS", "12"))),
        # Failed guesses at one account from one address (then that pair waits).
        "LOGIN_LIMIT_PER_ACCOUNT_ADDRESS": env.get(
            "LOGIN_LIMIT_PER_ACCOUNT_ADDRESS", "5 per 15 minutes"
        ),
        # Attempts at one account from browsers and networks it never signed in from
        # (a distributed guess); its own devices and usual network are not counted.
        "LOGIN_LIMIT_PER_ACCOUNT": env.get("LOGIN_LIMIT_PER_ACCOUNT", "10 per 15 minutes"),
        "LOGIN_LIMIT_PER_IP": env.get("LOGIN_LIMIT_PER_IP", "20 per 15 minutes"),
        # Patient links stay valid a little past what they point at; see services/links.py.
        "PATIENT_LINK_GRACE_DAYS": int(env.get("PATIENT_LINK_GRACE_DAYS", "2")),
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": 256 * 1024,
        # Trust one proxy hop for the client address and scheme when told to.
        "PROXY_FIX": _flag("PROXY_FIX", False),
    }


def limiter_storage_uri(redis_url: str) -> str:
    """Flask-Limiter's URI for the Redis RQ uses (``unix://`` becomes ``redis+unix://``)."""
    if not redis_url:
        return "memory://"
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url.removeprefix("unix://")
    return redis_url


def validate_config(config: dict[str, Any]) -> None:
    """Refuse to start with settings that are unsafe or cannot work."""
    if not config.get("SQLALCHEMY_DATABASE_URI"):
        raise ConfigError("DATABASE_URL is not set (the `portal` command sets an embedded one)")
    if config.get("PORTAL_ENV") == "production":
        missing = [k for k in ("SECRET_KEY", "PUBLIC_BASE_URL") if not config.get(k)]
        if missing:
            raise ConfigError(f"production requires {', '.join(missing)} to be set")
        if len(config["SECRET_KEY"]) < 32:
            raise ConfigError("SECRET_KEY must be at least 32 characters in production")
        if not str(config["PUBLIC_BASE_URL"]).startswith("https://"):
            raise ConfigError("PUBLIC_BASE_URL must be https:// in production")
        if not config.get("REDIS_URL"):
            raise ConfigError("production requires REDIS_URL (rate limits and jobs)")
