"""``GET /api/v1/analytics``: the dashboard's figures as JSON (``services/analytics``)."""

from __future__ import annotations

from flask import Response, jsonify, request

from portal.services import analytics
from portal.web.api.blueprint import bp
from portal.web.api.schemas import AnalyticsQuery, parse_query


@bp.get("/analytics")
def get_analytics() -> Response:
    query = parse_query(AnalyticsQuery, request.args.to_dict())
    date_from, date_to = analytics.resolve_range(query.from_, query.to, query.location_id)
    return jsonify(analytics.figures(date_from, date_to, query.location_id).as_json())
