"""A process that serves many requests compiles its templates once, before the first."""

from __future__ import annotations

from flask import Flask

from portal.templating import compile_templates
from tests.conftest import TEST_SECRET


def _fresh_app(app: Flask) -> Flask:
    from portal import create_app

    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": TEST_SECRET,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        }
    )


def test_every_template_is_compiled_and_kept(app: Flask) -> None:
    fresh = _fresh_app(app)
    names = fresh.jinja_env.list_templates()
    assert compile_templates(fresh) == len(names) > 50
    cache = fresh.jinja_env.cache
    assert cache is not None
    kept = {key[1] for key in cache}  # (loader ref, name)
    assert {"patient/offer.html", "patient/taken.html", "sms/offer.txt"} <= kept
    assert set(names) <= kept  # the cache holds all (it is larger than the template count)


def test_a_worker_compiles_only_the_message_templates(app: Flask) -> None:
    fresh = _fresh_app(app)
    count = compile_templates(fresh, ("sms/", "emails/", "voice/"))
    kept = {key[1] for key in fresh.jinja_env.cache or {}}
    assert count == len(kept) > 0
    assert all(name.startswith(("sms/", "emails/", "voice/")) for name in kept)
