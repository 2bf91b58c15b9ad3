"""A fake Stripe API on loopback, for the real ``stripe`` client to talk to.

It speaks the few endpoints the portal uses — Checkout sessions, payment methods,
PaymentIntents, refunds — with JSON shaped like Stripe's, honours ``Idempotency-Key``
(a repeated key gets the first answer, as Stripe does), can be told to hang past the
client's timeout or decline a card, and signs webhook events with the endpoint secret
the way Stripe does (``Stripe-Signature: t=…,v1=HMAC-SHA256(secret, "t.payload")``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_test_{next(_ids):06d}"


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``) back into a dict (lists as dicts)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


@dataclass
class FakeStripe:
    webhook_secret: str = "whsec_test_secret"
    #: Seconds to sleep before answering the next N requests to a path prefix.
    hangs: dict[str, list[float]] = field(default_factory=dict)
    decline_customers: set[str] = field(default_factory=set)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    _answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> FakeStripe:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def hang(self, path_prefix: str, seconds: float, times: int = 1) -> None:
        with self._lock:
            self.hangs.setdefault(path_prefix, []).extend([seconds] * times)

    def _hang_for(self, path: str) -> float:
        with self._lock:
            for prefix, queue in self.hangs.items():
                if path.startswith(prefix) and queue:
                    return queue.pop(0)
        return 0.0

    # --- what the API does ---------------------------------------------------------

    def answer(self, method: str, path: str, params: dict[str, Any], key: str | None):
        with self._lock:
            self.requests.append((method, path))
            if key and key in self._answers:
                return self._answers[key]
            status, body = self._route(method, path, params)
            if key:
                self._answers[key] = (status, body)
            return status, body

    def _route(self, method: str, path: str, params: dict[str, Any]):
        if method == "POST" and path == "/v1/checkout/sessions":
            session = {
                "id": _id("cs"),
                "object": "checkout.session",
                "url": f"{self.base_url}/pay/{next(_ids)}",
                "mode": "payment",
                "payment_status": "unpaid",
                "status": "open",
                "client_reference_id": params.get("client_reference_id"),
                "metadata": params.get("metadata", {}),
                "customer": params.get("customer"),
                "amount_total": int(params["line_items"]["0"]["price_data"]["unit_amount"]),
                "success_url": params.get("success_url"),
            }
            self.sessions[session["id"]] = session
            return 200, session
        if method == "GET" and path == "/v1/payment_methods":
            return 200, {
                "object": "list",
                "url": "/v1/payment_methods",
                "has_more": False,
                "data": [{"id": "pm_card_visa", "object": "payment_method", "type": "card"}],
            }
        if method == "POST" and path == "/v1/payment_intents":
            intent = {
                "id": _id("pi"),
                "object": "payment_intent",
                "amount": int(params["amount"]),
                "currency": params.get("currency"),
                "customer": params.get("customer"),
                "metadata": params.get("metadata", {}),
                "status": "succeeded",
            }
            if params.get("customer") in self.decline_customers:
                intent["status"] = "requires_payment_method"
                self.intents[intent["id"]] = intent
                return 402, {
                    "error": {
                        "type": "card_error",
                        "code": "card_declined",
                        "message": "Your card was declined.",
                        "payment_intent": intent,
                    }
                }
            self.intents[intent["id"]] = intent
            return 200, intent
        if method == "POST" and path == "/v1/refunds":
            refund = {
                "id": _id("re"),
                "object": "refund",
                "payment_intent": params.get("payment_intent"),
                "amount": int(params.get("amount", 0)),
                "status": "succeeded",
            }
            self.refunds.append(refund)
            return 200, refund
        return 404, {"error": {"type": "invalid_request_error", "message": "no such route"}}

    # --- webhooks --------------------------------------------------------------------

    def complete(self, session_id: str, customer: str = "cus_test_saved") -> dict[str, Any]:
        """The patient paid: the ``checkout.session.completed`` event Stripe would send."""
        with self._lock:
            session = dict(self.sessions[session_id])
            session |= {
                "payment_status": "paid",
                "status": "complete",
                "customer": customer,
                "payment_intent": _id("pi"),
            }
            self.sessions[session_id] = session
        return self.event("checkout.session.completed", session)

    def event(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": _id("evt"),
            "object": "event",
            "type": kind,
            "api_version": "2025-01-27.acacia",
            "created": int(time.time()),
            "data": {"object": obj},
        }

    def sign(self, event: dict[str, Any], secret: str | None = None) -> tuple[bytes, str]:
        payload = json.dumps(event).encode()
        stamp = int(time.time())
        mac = hmac.new(
            (secret or self.webhook_secret).encode(),
            f"{stamp}.".encode() + payload,
            hashlib.sha256,
        ).hexdigest()
        return payload, f"t={stamp},v1={mac}"


class _Handler(BaseHTTPRequestHandler):
    owner: FakeStripe
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else url.query
        params = _nest(parse_qsl(raw, keep_blank_values=True))
        delay = self.owner._hang_for(url.path)
        if delay:
            time.sleep(delay)
        status, body = self.owner.answer(
            method, url.path, params, self.headers.get("Idempotency-Key")
        )
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", "req_fake")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")
