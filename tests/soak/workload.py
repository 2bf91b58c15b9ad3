"""The soak's clients: the practice's system (API), staff, patients and the providers.

Every action is an HTTP request to the real gunicorn: the API books, releases, checks
in and cancels; simulated patients read the texts, e-mails and calls the fakes
received and accept, decline, ignore, answer by text or keypress, pay a deposit, open
or cancel their appointment; Twilio's receipts arrive duplicated and shuffled, and
some are posted again much later. Each request is counted by what it did and how it
ended; a connection error (a web worker killed mid-request) is retried by nobody.
"""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from tests.fakes.smtp_server import SmtpServer
from tests.fakes.stripe_server import FakeStripe
from tests.fakes.twilio_server import Behaviour, Callback, Created, FakeTwilio

_OFFER_LINK = re.compile(r"/o/([A-Za-z0-9_.\-]+)")
_VISIT_LINK = re.compile(r"/a/([A-Za-z0-9_.\-]+)")
_TWIML = re.compile(r"/twiml/offer/([A-Za-z0-9_.\-]+)")
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
FROM_NUMBER = "+12125550199"


def phone(i: int) -> str:
    return f"+1212555{3000 + i:04d}"


class ChaoticTwilio(FakeTwilio):
    """Fake Twilio answering with a random mix of successes and provider faults.

    ``outage_until`` (monotonic seconds) makes every request hang past the client's
    timeout after accepting it, as an overloaded provider does.
    """

    outage_until: float = 0.0
    replayable: list[Callback]

    def next_behaviour(self, to: str) -> Behaviour:
        if time.monotonic() < self.outage_until:
            return Behaviour("ok", delay=6, duplicate=True, shuffle=True)
        roll = random.random()
        if roll < 0.03:
            return Behaviour("ok", delay=4)  # accepted, but the client times out first
        if roll < 0.07:
            return Behaviour("accept_then_500", duplicate=True, shuffle=True)
        if roll < 0.10:
            return Behaviour("fail", 500, 20500)
        if roll < 0.12:
            return Behaviour("fail", 429, 20429)
        if roll < 0.17:
            return Behaviour(callbacks=("sent", "undelivered"), error_code="30003", duplicate=True)
        if roll < 0.21:
            return Behaviour(callbacks=())  # no receipt ever: the deadline must escalate
        return Behaviour(duplicate=True, shuffle=True, delay=random.choice((0, 0, 0, 0.3, 1.0)))

    def emit(self, created: Created, behaviour: Behaviour) -> None:
        super().emit(created, behaviour)

    def _post_all(self, callbacks: list[Callback]) -> None:
        with self._lock:
            if not hasattr(self, "replayable"):
                self.replayable = []
            self.replayable.extend(callbacks)
        super()._post_all(callbacks)

    def replay_old(self, n: int) -> int:
        """Post ``n`` receipts already delivered once, long after (reordered in time)."""
        with self._lock:
            pool = list(getattr(self, "replayable", []))
        for callback in random.sample(pool, min(n, len(pool))):
            self.post(callback)
        return min(n, len(pool))


@dataclass
class Stats:
    """What the clients did: operations by kind and outcome."""

    ops: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, kind: str, status: int | None, path: str = "") -> None:
        with self.lock:
            self.ops[kind] += 1
            outcome = "err" if status is None else f"{status // 100}xx"
            self.outcomes[outcome] += 1
            if status is not None and status >= 500:
                self.outcomes[str(status)] += 1
            if status is not None and status >= 500:
                self.server_errors.append(f"{kind} {status} {path}")

    @property
    def operations(self) -> int:
        with self.lock:
            return sum(self.ops.values())


@dataclass
class World:
    """What the clients know: ids the API returned (the history's client side)."""

    practitioner_ids: list[int]
    service_ids: list[int]
    location_id: int
    patient_ids: list[int] = field(default_factory=list)
    slot_ids: list[int] = field(default_factory=list)
    near_slot_ids: list[int] = field(default_factory=list)
    appointment_ids: list[int] = field(default_factory=list)
    near_appointment_ids: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pick(self, name: str) -> int | None:
        with self.lock:
            items = getattr(self, name)
            return random.choice(items) if items else None

    def add(self, name: str, value: int) -> None:
        with self.lock:
            getattr(self, name).append(value)


class Clients:
    """Drive the portal over HTTP from several threads until ``stop`` is set."""

    def __init__(
        self,
        base_url: str,
        api_token: str,
        world: World,
        twilio: ChaoticTwilio,
        smtp: SmtpServer,
        stripe: FakeStripe,
        stats: Stats,
        auth_token: str,
        next_patient: int,
    ) -> None:
        self.base = base_url
        self.headers = {"Authorization": f"Bearer {api_token}"}
        self.world = world
        self.twilio = twilio
        self.smtp = smtp
        self.stripe = stripe
        self.stats = stats
        self.auth_token = auth_token
        self.stop = threading.Event()
        self._patient_seq = next_patient
        self._seq_lock = threading.Lock()
        self._seen_sms = 0
        self._seen_mail = 0
        self._seen_sessions: set[str] = set()
        self._handled_links: set[str] = set()
        self.threads: list[threading.Thread] = []
        self._late_payers: list[threading.Timer] = []

    # --- plumbing -------------------------------------------------------------------

    def request(
        self, kind: str, method: str, path: str, session: requests.Session | None = None, **kw: Any
    ) -> requests.Response | None:
        http = session or requests
        try:
            response = http.request(method, self.base + path, timeout=20, **kw)
        except requests.RequestException:
            self.stats.count(kind, None, path)
            return None
        self.stats.count(kind, response.status_code, path)
        return response

    def api(self, kind: str, method: str, path: str, **kw: Any) -> requests.Response | None:
        return self.request(kind, method, "/api/v1" + path, headers=self.headers, **kw)

    def start(self, api_threads: int = 2) -> None:
        loops = [self._api_loop] * api_threads + [
            self._patient_loop,
            self._payer_loop,
            self._receipt_replayer,
        ]
        for loop in loops:
            thread = threading.Thread(target=self._guard(loop), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _guard(self, loop):  # type: ignore[no-untyped-def]
        def run() -> None:
            while not self.stop.is_set():
                try:
                    loop()
                except Exception as exc:  # a client bug must not end the soak silently
                    self.stats.count(f"client_error:{type(exc).__name__}", 0)
                    time.sleep(0.5)

        return run

    def join(self) -> None:
        """Stop the clients; late payers still pay (within a minute) before this returns."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        for timer in list(self._late_payers):
            timer.join(timeout=90)

    # --- the practice's system and the front desk (API) ------------------------------

    def _api_loop(self) -> None:
        actions = [
            (self.open_slot, 0.8),
            (self.new_waitlisted_patient, 1),
            (self.staff_book, 2),
            (self.release, 1),
            (self.cancel, 1),
            (self.check_in, 0.7),
            (self.near_booking, 0.8),
            (self.read, 1),
        ]
        action = random.choices([a for a, _ in actions], weights=[w for _, w in actions])[0]
        action()
        time.sleep(random.uniform(0.3, 0.9))

    def open_slot(self) -> None:
        if random.random() < 0.3:  # its 3-hour reminder falls due during the run
            start = (datetime.now(UTC) + timedelta(hours=3, minutes=random.uniform(2, 10))).replace(
                second=0, microsecond=0
            )
        else:
            start = _aligned(datetime.now(UTC) + timedelta(hours=random.uniform(3, 72)))
        body = {
            "practitioner_id": random.choice(self.world.practitioner_ids),
            "service_id": random.choice(self.world.service_ids),
            "start_at": start.isoformat(),
        }
        response = self.api("open_slot", "POST", "/slots", json=body)
        if response is not None and response.status_code == 201:
            self.world.add("slot_ids", response.json()["id"])

    def new_waitlisted_patient(self) -> None:
        with self._seq_lock:
            self._patient_seq += 1
            n = self._patient_seq
        body = {"name": f"Soak Patient {n}", "phone": phone(n), "email": f"soak{n}@example.test"}
        response = self.api("create_patient", "POST", "/patients", json=body)
        if response is None or response.status_code != 201:
            return
        patient_id = response.json()["id"]
        self.world.add("patient_ids", patient_id)
        for service_id in random.sample(self.world.service_ids, random.randint(1, 2)):
            self.api(
                "join_waitlist",
                "POST",
                "/waitlist",
                json={
                    "patient_id": patient_id,
                    "service_id": service_id,
                    "location_id": self.world.location_id,
                    "short_notice_ok": random.random() < 0.5,
                },
            )

    def staff_book(self) -> None:
        slot_id, patient_id = self.world.pick("slot_ids"), self.world.pick("patient_ids")
        if slot_id is None or patient_id is None:
            return
        response = self.api(
            "book", "POST", "/appointments", json={"slot_id": slot_id, "patient_id": patient_id}
        )
        if response is not None and response.status_code == 201:
            self.world.add("appointment_ids", response.json()["id"])

    def release(self) -> None:
        pool = "near_slot_ids" if random.random() < 0.4 else "slot_ids"
        slot_id = self.world.pick(pool)
        if slot_id is not None:
            self.api("release", "POST", f"/slots/{slot_id}/release", json={"reason": "soak"})

    def cancel(self) -> None:
        appointment_id = self.world.pick("appointment_ids")
        if appointment_id is not None:
            self.api(
                "cancel",
                "POST",
                f"/appointments/{appointment_id}/cancel",
                json={"reason": "soak", "waive_fee": random.random() < 0.5},
            )

    def check_in(self) -> None:
        appointment_id = self.world.pick("near_appointment_ids")
        if appointment_id is None:
            return
        self.api("check_in", "POST", f"/appointments/{appointment_id}/check-in")
        if random.random() < 0.3:
            self.api("complete", "POST", f"/appointments/{appointment_id}/complete")

    def near_booking(self) -> None:
        """A visit starting in about a minute: checked in, or left to become a no-show."""
        # Whole minutes, as the API requires (seconds here made every one a 422 before).
        # Few practitioners and two-minute visits: most tries overlap one already open
        # (409), so a few minutes and practitioners are tried before giving up.
        for _try in range(4):
            start = (datetime.now(UTC) + timedelta(seconds=random.uniform(90, 330))).replace(
                second=0, microsecond=0
            )
            body = {
                "practitioner_id": random.choice(self.world.practitioner_ids),
                "service_id": random.choice(self.world.service_ids),
                "start_at": start.isoformat(),
                "end_at": (start + timedelta(minutes=2)).isoformat(),
            }
            response = self.api("open_near_slot", "POST", "/slots", json=body)
            if response is None or response.status_code != 409:
                break
        if response is None or response.status_code != 201:
            return
        slot_id = response.json()["id"]
        # Half are left alone to become no-shows: in the pools, nearly every one was
        # checked in, cancelled or released within its few minutes, and no run made one.
        no_show = random.random() < 0.5
        if not no_show:
            self.world.add("near_slot_ids", slot_id)
        patient_id = self.world.pick("patient_ids")
        if patient_id is None:
            return
        response = self.api(
            "book", "POST", "/appointments", json={"slot_id": slot_id, "patient_id": patient_id}
        )
        if response is not None and response.status_code == 201 and not no_show:
            self.world.add("near_appointment_ids", response.json()["id"])
            self.world.add("appointment_ids", response.json()["id"])

    def burst(self, n: int = 12) -> None:
        """Many reads at once, so a web worker killed now dies mid-request."""
        threads = [threading.Thread(target=self.read, daemon=True) for _ in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    def read(self) -> None:
        slot_id = self.world.pick("slot_ids")
        if slot_id is not None:
            self.api("read", "GET", f"/slots/{slot_id}/offers")
        appointment_id = self.world.pick("appointment_ids")
        if appointment_id is not None:
            self.api("read", "GET", f"/appointments/{appointment_id}")

    # --- patients -------------------------------------------------------------------

    def _patient_loop(self) -> None:
        with self.twilio._lock:
            fresh = self.twilio.created[self._seen_sms :]
            self._seen_sms += len(fresh)
        with self.smtp.handler.lock:
            mails = self.smtp.handler.messages[self._seen_mail :]
            self._seen_mail += len(mails)
        for created in fresh:
            if created.kind == "call":
                self._answer_call(created)
            else:
                self._read_text(created.to, created.params.get("Body", ""))
        for mail in mails:
            body = mail.get_body(preferencelist=("plain",))
            self._read_text(None, body.get_content() if body else "")
        time.sleep(0.3)

    def _read_text(self, sender: str | None, text: str) -> None:
        for token in _OFFER_LINK.findall(text):
            if token in self._handled_links:
                continue  # the same offer by another channel: one answer is enough
            self._handled_links.add(token)
            roll = random.random()
            if roll < 0.35:
                self._answer_offer(token, "accept", twice=random.random() < 0.2)
            elif roll < 0.50:
                self._answer_offer(token, "decline")
            elif roll < 0.70 and sender:
                self.sms_reply(sender, random.choice(("YES", "yes please", "NO", "Y")))
            # else: ignored, the window runs out
        for token in _VISIT_LINK.findall(text):
            if token in self._handled_links:
                continue
            self._handled_links.add(token)
            roll = random.random()
            if roll < 0.3:
                self.request("visit_page", "GET", f"/a/{token}")
            elif roll < 0.4:
                self._cancel_visit(token)
            elif roll < 0.45 and sender:
                self.sms_reply(sender, "C")

    def _answer_offer(self, token: str, answer: str, twice: bool = False) -> None:
        session = requests.Session()
        page = self.request("offer_page", "GET", f"/o/{token}", session=session)
        if page is None or page.status_code != 200:
            return
        match = _CSRF.search(page.text)
        data = {"csrf_token": match.group(1)} if match else {}
        for _ in range(2 if twice else 1):
            self.request(
                f"offer_{answer}",
                "POST",
                f"/o/{token}/{answer}",
                session=session,
                data=data,
                allow_redirects=False,
            )
        if answer != "accept":
            return
        page = self.request("offer_page", "GET", f"/o/{token}", session=session)
        if page is not None and f"/o/{token}/pay" in page.text:  # held: a deposit is due
            match = _CSRF.search(page.text)
            self.request(
                "offer_pay",
                "POST",
                f"/o/{token}/pay",
                session=session,
                data={"csrf_token": match.group(1)} if match else {},
                allow_redirects=False,
            )

    def _cancel_visit(self, token: str) -> None:
        session = requests.Session()
        page = self.request("visit_page", "GET", f"/a/{token}", session=session)
        if page is None or page.status_code != 200:
            return
        match = _CSRF.search(page.text)
        data = {"csrf_token": match.group(1)} if match else {}
        quote = self.request(
            "visit_cancel", "POST", f"/a/{token}/cancel", session=session, data=data
        )
        if quote is not None and quote.status_code == 200:
            match = _CSRF.search(quote.text) or match
            data = {"csrf_token": match.group(1)} if match else {}
            self.request(
                "visit_cancel_confirm",
                "POST",
                f"/a/{token}/cancel/confirm",
                session=session,
                data=data,
                allow_redirects=False,
            )

    def sms_reply(self, sender: str, text: str) -> None:
        url = self.base + "/webhooks/twilio/sms-inbound"
        params = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": self.twilio.account_sid,
            "From": sender,
            "To": FROM_NUMBER,
            "Body": text,
        }
        callback = self.twilio.signed(url, params)
        for _ in range(1 + (random.random() < 0.3)):  # Twilio may post an inbound text twice
            self.request(
                "sms_inbound",
                "POST",
                "/webhooks/twilio/sms-inbound",
                data=params,
                headers={"X-Twilio-Signature": callback.signature},
            )

    def _answer_call(self, created: Created) -> None:
        match = _TWIML.search(created.params.get("Url", ""))
        if match is None or random.random() < 0.4:
            return  # not an offer call, or nobody picks up the phone
        path = f"/twiml/offer/{match.group(1)}/gather"
        params = {
            "CallSid": created.sid,
            "AccountSid": self.twilio.account_sid,
            "Digits": random.choice("12"),
            "From": FROM_NUMBER,
            "To": created.to,
        }
        callback = self.twilio.signed(self.base + path, params)
        self.request(
            "call_keypress",
            "POST",
            path,
            data=params,
            headers={"X-Twilio-Signature": callback.signature},
        )

    def _payer_loop(self) -> None:
        """Patients asked for a deposit pay it (most of them), the event sometimes twice."""
        with self.stripe._lock:
            sessions = [s for s in self.stripe.sessions if s not in self._seen_sessions]
        for session_id in sessions:
            self._seen_sessions.add(session_id)
            roll = random.random()
            if roll < 0.2:
                continue  # never pays: the hold lapses
            if roll < 0.4:  # pays after the hold lapsed: the payment must be refunded
                timer = threading.Timer(60, self._pay, args=(session_id,))
                self._late_payers.append(timer)
                timer.start()
                continue
            self._pay(session_id)
        time.sleep(1.0)

    def _pay(self, session_id: str) -> None:
        payload, signature = self.stripe.sign(self.stripe.complete(session_id))
        for _ in range(1 + (random.random() < 0.3)):  # Stripe may deliver an event twice
            # and retries until the endpoint answers 2xx, as Stripe does (any other answer)
            for _retry in range(30):
                response = self.request(
                    "stripe_webhook",
                    "POST",
                    "/webhooks/stripe",
                    data=payload,
                    headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
                )
                if response is not None and 200 <= response.status_code < 300:
                    break
                time.sleep(1.0)

    def _receipt_replayer(self) -> None:
        time.sleep(5)
        replayed = self.twilio.replay_old(3)
        with self.stats.lock:
            self.stats.ops["receipt_replayed"] += replayed


def _aligned(moment: datetime) -> datetime:
    return moment.replace(minute=(moment.minute // 15) * 15, second=0, microsecond=0)
