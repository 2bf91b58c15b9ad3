"""The OpenAPI document describes every API route, with bearer auth and the error shape."""

from __future__ import annotations

import json
import re

from flask import Flask
from flask.testing import FlaskClient

PREFIX = "/api/v1"


def _routes(app: Flask) -> set[tuple[str, str]]:
    """Return (METHOD, /path/{param}) for every rule of the api blueprint."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        assert rule.rule.startswith(PREFIX)
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule.removeprefix(PREFIX))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((method, path))
    return routes


def test_document_is_openapi_3_1_json(client: FlaskClient) -> None:
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    doc = json.loads(resp.data)
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": PREFIX}]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert doc["security"] == [{"bearerAuth": []}]


def test_every_route_is_documented_and_nothing_else(app: Flask, client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").json
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert documented == _routes(app)


def test_every_reference_resolves(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").json
    schemas = doc["components"]["schemas"]
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(doc))
    assert refs
    assert set(refs) <= set(schemas)


def test_operations_declare_auth_errors_and_bodies(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").json
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            responses = op["responses"]
            if op.get("security") == []:
                assert path == "/openapi.json"
            else:
                assert responses["401"]["content"]["application/json"]["schema"] == error_ref
            # Actions on a named object (release, check-in) take no body; the rest do.
            if method == "post" and not path.endswith(("/release", "/check-in")):
                assert "requestBody" in op
            if "requestBody" in op:
                assert {"400", "422"} <= set(responses)
            assert any(code.startswith("2") for code in responses)
    slot_in = doc["components"]["schemas"]["SlotIn"]
    assert slot_in["additionalProperties"] is False
    assert slot_in["properties"]["start_at"]["format"] == "date-time"
    ops_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ops_ids) == len(set(ops_ids))
