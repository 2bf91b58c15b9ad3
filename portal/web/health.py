"""Health probes: ``GET /livez`` (is the process serving?) and ``GET /healthz``.

``/healthz`` answers 200 when this web process can serve (database and Redis reachable)
and 503 otherwise, so a load balancer takes it out of rotation only for its own faults.
It also says whether background processing is alive (``worker``, ``cron``: ``ok`` or
``down``) — a stopped worker does not make the web node unhealthy, but monitoring and
``portal doctor`` should shout about it."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify
from redis.exceptions import RedisError

from portal.doctor import cron_check, worker_check
from portal.extensions import csrf, db, limiter
from portal.queue import redis_connection

bp = Blueprint("health", __name__)
csrf.exempt(bp)
log = logging.getLogger(__name__)


@bp.get("/livez")
@limiter.exempt
def livez() -> Response:
    """Answer ``ok`` without touching the database or Redis (liveness, benchmark baseline)."""
    return Response("ok", mimetype="text/plain")


@bp.get("/healthz")
def healthz():
    status = {"database": "ok", "queue": "ok"}
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        log.warning("healthz: database check failed (%s)", type(exc).__name__)
        status["database"] = "error"
    finally:
        db.session.rollback()
    if current_app.config["REDIS_URL"]:
        try:
            redis_connection().ping()
        except RedisError as exc:
            log.warning("healthz: redis check failed (%s)", type(exc).__name__)
            status["queue"] = "error"
    else:
        status["queue"] = "inline"
    ok = all(v in ("ok", "inline") for v in status.values())
    if status["queue"] == "ok":
        status["worker"] = "ok" if worker_check().ok else "down"
        status["cron"] = "ok" if cron_check().ok else "down"
    return jsonify(status), 200 if ok else 503
