"""A schemathesis check the fuzz test adds to the built-in ones (loaded as its hooks module).

``positive_data_acceptance`` is told that 422 may answer a schema-valid request: some
rules cannot be written in JSON Schema (a phone number that exists, a referenced id
that exists, a window that starts before it ends, a slot in the future). Those answers
carry a domain code the document lists for the operation (``response_schema_conformance``
checks that). This check keeps the rest strict: a request the document allows must
never fail the server's own input validation (``validation_error``), be called
malformed (``invalid_json``) or reach the database's range checks (``invalid_data``).
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

SCHEMA_LEVEL_CODES = frozenset({"validation_error", "invalid_json", "invalid_data"})


def _error_code(body: bytes) -> tuple[str | None, Any]:
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return None, None
    if not isinstance(error, dict):
        return None, None
    return error.get("code"), error.get("fields")


@schemathesis.check
def schema_valid_request_passes_validation(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """Fail when a request generated to fit the document fails the server's validation."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if response.status_code not in (400, 422):
        return None
    code, fields = _error_code(response.content)
    if code is None or code in SCHEMA_LEVEL_CODES:
        raise AssertionError(
            f"The document allows this request but the server refused it as {code!r}: {fields}"
        )
    return None
