"""A fake Twilio REST API on loopback, for the real ``twilio`` client to talk to.

It speaks ``POST /2010-04-01/Accounts/<sid>/Messages.json`` and ``Calls.json`` with
JSON shaped like Twilio's, and can be told, per recipient, to fail (4xx with a Twilio
error body, e.g. 21610 or 21211), time out, accept and then answer 500, or answer
slowly. Accepted messages and calls produce signed status callbacks — duplicated and
shuffled on request — either kept for the test to deliver (through the Flask test
client) or posted to a live server in a background thread.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from twilio.request_validator import RequestValidator

_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/(?P<kind>Messages|Calls)\.json$")


@dataclass
class Behaviour:
    """How the fake answers one create request."""

    kind: str = "ok"  # ok | fail | timeout | accept_then_500
    status: int = 400
    code: int | None = None
    delay: float = 0.0  # seconds before answering (ok, timeout, accept_then_500)
    callbacks: tuple[str, ...] | None = None  # None: the default for the resource
    error_code: str | None = None  # ErrorCode on failure callbacks
    duplicate: bool = False
    shuffle: bool = False


@dataclass
class Created:
    """A message or call the fake accepted."""

    kind: str  # "message" or "call"
    sid: str
    to: str
    params: dict[str, str]
    attempt_id: int | None


@dataclass
class Callback:
    url: str
    params: dict[str, str]
    signature: str


@dataclass
class FakeTwilio:
    account_sid: str
    auth_token: str
    #: Post callbacks to this live server (``http://127.0.0.1:PORT``); None keeps them.
    deliver_to: str | None = None
    callback_delay: float = 0.05
    created: list[Created] = field(default_factory=list)
    requests_seen: int = 0
    pending: list[Callback] = field(default_factory=list)
    delivered: int = 0
    default: Behaviour = field(default_factory=Behaviour)
    _script: dict[str, list[Behaviour]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> FakeTwilio:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, to: str, *behaviours: Behaviour) -> None:
        """Answer the next requests for ``to`` with these behaviours, in order."""
        with self._lock:
            self._script.setdefault(to, []).extend(behaviours)

    def next_behaviour(self, to: str) -> Behaviour:
        with self._lock:
            queue = self._script.get(to)
            return queue.pop(0) if queue else self.default

    def record(self, created: Created) -> None:
        with self._lock:
            self.created.append(created)

    def sends_to(self, to: str, kind: str = "message") -> list[Created]:
        with self._lock:
            return [c for c in self.created if c.to == to and c.kind == kind]

    # --- callbacks -----------------------------------------------------------------

    def signed(self, url: str, params: dict[str, str]) -> Callback:
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        return Callback(url, params, signature)

    def emit(self, created: Created, behaviour: Behaviour) -> None:
        """Queue or post the status callbacks for an accepted message or call."""
        url = created.params.get("StatusCallback")
        if not url:
            return
        statuses = list(
            behaviour.callbacks
            if behaviour.callbacks is not None
            else (("sent", "delivered") if created.kind == "message" else ("completed",))
        )
        if behaviour.duplicate:
            statuses = statuses + statuses
        if behaviour.shuffle:
            random.shuffle(statuses)
        callbacks = [
            self.signed(url, self._callback_params(created, s, behaviour)) for s in statuses
        ]
        if self.deliver_to is None:
            with self._lock:
                self.pending.extend(callbacks)
            return
        thread = threading.Thread(target=self._post_all, args=(callbacks,), daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _callback_params(self, created: Created, status: str, b: Behaviour) -> dict[str, str]:
        failed = status in ("failed", "undelivered", "busy", "no-answer", "canceled")
        if created.kind == "message":
            params = {
                "MessageSid": created.sid,
                "SmsSid": created.sid,
                "MessageStatus": status,
                "SmsStatus": status,
            }
        else:
            params = {"CallSid": created.sid, "CallStatus": status, "Direction": "outbound-api"}
        params |= {
            "AccountSid": self.account_sid,
            "To": created.to,
            "ApiVersion": "2010-04-01",
            "From": created.params.get("From", ""),
        }
        if failed and b.error_code:
            params["ErrorCode"] = b.error_code
        return params

    def _post_all(self, callbacks: list[Callback]) -> None:
        for callback in callbacks:
            time.sleep(self.callback_delay)
            self.post(callback)

    def post(self, callback: Callback) -> int:
        """Post one callback to the live server (rewriting the public host, as a proxy)."""
        parts = urlsplit(callback.url)
        target = f"{self.deliver_to}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        for _ in range(50):  # the app may be briefly unreachable; Twilio retries too
            try:
                response = requests.post(
                    target,
                    data=callback.params,
                    timeout=10,
                    headers={
                        "X-Twilio-Signature": callback.signature,
                        "I-Twilio-Idempotency-Token": uuid.uuid4().hex,
                    },
                )
            except requests.RequestException:
                time.sleep(0.2)
                continue
            if response.status_code < 500:
                with self._lock:
                    self.delivered += 1
                return response.status_code
            time.sleep(0.2)
        return 0

    def take_pending(self) -> list[Callback]:
        with self._lock:
            pending, self.pending = self.pending, []
        return pending

    def wait_idle(self, timeout: float = 10) -> None:
        """Wait until every background callback thread is done."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(timeout=max(deadline - time.monotonic(), 0.01))


class _Handler(BaseHTTPRequestHandler):
    owner: FakeTwilio

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        fake = self.owner
        with fake._lock:
            fake.requests_seen += 1
        match = _PATH.match(urlsplit(self.path).path)
        length = int(self.headers.get("Content-Length") or 0)
        params = dict(parse_qsl(self.rfile.read(length).decode()))
        if not match or match["sid"] != fake.account_sid:
            return self._json(404, {"code": 20404, "message": "not found", "status": 404})
        if not self._authorised():
            return self._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
        kind = "message" if match["kind"] == "Messages" else "call"
        behaviour = fake.next_behaviour(params.get("To", ""))
        if behaviour.kind == "fail":
            return self._json(behaviour.status, _error(behaviour))
        created = Created(kind, _sid(kind), params.get("To", ""), params, _attempt(params))
        fake.record(created)
        fake.emit(created, behaviour)
        if behaviour.delay:
            time.sleep(behaviour.delay)
        if behaviour.kind == "accept_then_500":
            return self._json(
                500, {"code": 20500, "message": "Internal Server Error", "status": 500}
            )
        self._json(201, _resource(fake.account_sid, created))

    def _authorised(self) -> bool:
        import base64

        expected = f"{self.owner.account_sid}:{self.owner.auth_token}".encode()
        header = self.headers.get("Authorization", "")
        return header == "Basic " + base64.b64encode(expected).decode()

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client timed out and went away
            pass


def _sid(kind: str) -> str:
    return ("SM" if kind == "message" else "CA") + uuid.uuid4().hex


def _attempt(params: dict[str, str]) -> int | None:
    query = dict(parse_qsl(urlsplit(params.get("StatusCallback", "")).query))
    raw = query.get("attempt", "")
    return int(raw) if raw.isdigit() else None


def _error(b: Behaviour) -> dict[str, Any]:
    return {
        "code": b.code,
        "message": f"Twilio error {b.code}",
        "more_info": f"https://www.twilio.com/docs/errors/{b.code}",
        "status": b.status,
    }


def _resource(account_sid: str, c: Created) -> dict[str, Any]:
    kind = "Messages" if c.kind == "message" else "Calls"
    now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    body: dict[str, Any] = {
        "sid": c.sid,
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "to": c.to,
        "from": c.params.get("From"),
        "status": "queued",
        "date_created": now,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "price": None,
        "price_unit": "USD",
        "uri": f"/2010-04-01/Accounts/{account_sid}/{kind}/{c.sid}.json",
    }
    if c.kind == "message":
        body |= {"body": c.params.get("Body"), "num_segments": "1", "num_media": "0"}
    return body
