"""The waitlist auto-fill portal: the application factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from portal.config import load_config, validate_config
from portal.logs import configure_logging


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the portal app; ``test_config`` overrides the environment."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(load_config(Path(app.instance_path)))
    if test_config:
        app.config.from_mapping(test_config)
    validate_config(app.config)
    configure_logging()
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_cli(app)
    register_security_headers(app)
    if app.config["PROXY_FIX"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    return app


def register_extensions(app: Flask) -> None:
    from portal import models  # noqa: F401  (every model registered before mappers configure)
    from portal.extensions import csrf, db, htmx, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(
        app, db, directory=str(Path(app.root_path).parent / "migrations"), render_as_batch=False
    )
    csrf.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)


def register_blueprints(app: Flask) -> None:
    from portal.web import (
        api,
        health,
        ids,
        patient,
        patient_cancel,  # noqa: F401 (adds its routes to patient.bp)
        patient_rebook,  # noqa: F401 (adds its routes to patient.bp)
        patient_visit,  # noqa: F401 (adds its routes to patient.bp)
        payments,
        public,
        staff,
        twilio,
        ui,
    )

    ids.init_app(app)
    ui.init_app(app)
    app.register_blueprint(public.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(patient.bp)
    app.register_blueprint(twilio.bp)
    app.register_blueprint(payments.bp)


def register_errorhandlers(app: Flask) -> None:
    from portal.web import errors

    errors.init_app(app)


def register_cli(app: Flask) -> None:
    from portal.commands import register

    register(app.cli)


def register_security_headers(app: Flask) -> None:
    from portal.web.security import init_app

    init_app(app)
