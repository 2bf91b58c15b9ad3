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
            # Actions on a named object (release, check-in, complete) take no body; the rest do.
            if method == "post" and not path.endswith(("/release", "/check-in", "/complete")):
                assert "requestBody" in op
            if "requestBody" in op:
                assert {"400", "422"} <= set(responses)
            assert any(code.startswith("2") for code in responses)
    slot_in = doc["components"]["schemas"]["SlotIn"]
    assert slot_in["additionalProperties"] is False
    assert slot_in["properties"]["start_at"]["format"] == "date-time"
    ops_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ops_ids) == len(set(ops_ids))


def _id_schemas(node: object, name: str = "") -> list[tuple[str, dict]]:
    """Return (name, schema) for every integer property or parameter named like an id."""
    found: list[tuple[str, dict]] = []
    if isinstance(node, dict):
        is_parameter = "name" in node and "schema" in node
        if is_parameter and (node["name"] == "id" or node["name"].endswith("_id")):
            found.append((node["name"], node["schema"]))
        for key, value in node.get("properties", {}).items():
            if key == "id" or key.endswith("_id"):
                for option in value.get("anyOf", [value]):
                    if option.get("type") == "integer":
                        found.append((key, option))
        for value in node.values():
            found += _id_schemas(value)
    elif isinstance(node, list):
        for value in node:
            found += _id_schemas(value)
    return found


def test_every_input_id_is_a_positive_int32(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").json
    inputs = [op.get("parameters", []) for ops in doc["paths"].values() for op in ops.values()]
    inputs += [doc["components"]["schemas"][name] for name in ("PatientIn", "WaitlistIn")]
    inputs += [doc["components"]["schemas"][name] for name in ("SlotIn", "AppointmentIn")]
    ids = _id_schemas(inputs)
    assert len(ids) >= 12
    for name, schema in ids:
        assert (schema["type"], schema["minimum"], schema["maximum"]) == (
            "integer",
            1,
            2**31 - 1,
        ), name


def test_text_times_and_windows_are_bounded_in_the_document(client: FlaskClient) -> None:
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    patient = schemas["PatientIn"]["properties"]
    assert patient["phone"]["maxLength"] == 40
    assert patient["name"]["maxLength"] == 120 and "pattern" in patient["name"]
    start_at = schemas["SlotIn"]["properties"]["start_at"]
    assert start_at["pattern"].startswith("^20[0-9]{2}-")
    assert ":00(Z|" in start_at["pattern"]  # whole minutes
    windows = schemas["WaitlistIn"]["properties"]["windows"]["anyOf"][0]
    assert windows["maxItems"] == 50
    window = schemas["WindowIn"]["properties"]
    assert (window["weekday"]["minimum"], window["weekday"]["maximum"]) == (0, 6)
    assert window["start"]["pattern"] == "^([01][0-9]|2[0-3]):[0-5][0-9]$"


def test_request_examples_are_valid_bodies(client: FlaskClient) -> None:
    from portal.web.api.openapi import OPERATIONS

    doc = client.get("/api/v1/openapi.json").json
    for (method, path), op in OPERATIONS.items():
        if op.body is None:
            continue
        media = doc["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]
        op.body.model_validate(media["example"])


def test_each_422_lists_its_codes(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").json
    slots = doc["paths"]["/slots"]["post"]["responses"]["422"]
    codes = slots["content"]["application/json"]["schema"]["properties"]["error"]["properties"]
    assert codes["code"]["enum"][0] == "validation_error"
    assert {"slot_in_past", "slot_too_far_ahead", "unknown_service"} <= set(codes["code"]["enum"])
    assert "`slot_too_far_ahead`" in slots["description"]
