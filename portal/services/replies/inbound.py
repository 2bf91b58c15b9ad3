"""Texts from patients: YES/NO answer the latest offer, STOP/START/HELP manage opt-out.

Keywords follow Twilio's defaults. With Twilio's Advanced Opt-Out on, Twilio answers
STOP/START/HELP itself and tells us through ``OptOutType``; we then only record the
change and reply nothing. Each inbound message is stored once as a ``DeliveryEvent``
(keyed by its MessageSid), so a redelivered webhook does not answer twice.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal.db import db, now_utc
from portal.models import DeliveryEvent, Offer, Patient
from portal.services.audit import Action, Actor, record
from portal.services.notify.messages import render_reply
from portal.services.replies.answers import (
    Answer,
    accept,
    answer_for_closed,
    decline,
    latest_offer,
)

log = logging.getLogger(__name__)

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"})
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
YES_WORDS = frozenset({"YES", "Y", "1"})
NO_WORDS = frozenset({"NO", "N", "2"})
#: Only these are ever stored: the rest of a text may hold anything.
KEYWORDS = STOP_WORDS | START_WORDS | HELP_WORDS | YES_WORDS | NO_WORDS

_WORD = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class InboundSms:
    message_sid: str
    from_number: str
    body: str
    opt_out_type: str | None = None


def keyword(body: str) -> str:
    """Return the first word of a text, upper-cased ("yes!" → "YES")."""
    match = _WORD.search(body or "")
    return match.group(0).upper() if match else ""


def handle_inbound(sms: InboundSms) -> str | None:
    """Act on one inbound text; return the reply to send, if any (flushes)."""
    word = keyword(sms.body)
    twilio_handled = (sms.opt_out_type or "").upper()
    if not _store_once(sms, word):
        return None
    patients = list(
        db.session.scalars(sa.select(Patient).where(Patient.phone_e164 == sms.from_number))
    )
    if twilio_handled == "STOP" or word in STOP_WORDS:
        _set_opt_out(patients, True)
        return (
            None if twilio_handled or not patients else render_reply("sms/stopped.txt", patients[0])
        )
    if twilio_handled == "START" or word in START_WORDS:
        _set_opt_out(patients, False)
        if word not in YES_WORDS:
            return (
                None
                if twilio_handled or not patients
                else render_reply("sms/started.txt", patients[0])
            )
    if not patients:
        log.info("inbound text %s from an unknown number", sms.message_sid)
        return None
    if twilio_handled == "HELP" or word in HELP_WORDS:
        return None if twilio_handled else render_reply("sms/help.txt", patients[0])
    if word in YES_WORDS:
        _set_opt_out(patients, False)  # texting YES to us is opting in, as Twilio treats it
        return _answer(patients, accept_it=True)
    if word in NO_WORDS:
        return _answer(patients, accept_it=False)
    return render_reply("sms/help.txt", patients[0])


def _answer(patients: list[Patient], *, accept_it: bool) -> str:
    ids = [p.id for p in patients]
    offer = latest_offer(ids, pending_only=True)
    if offer is None:
        recent = latest_offer(ids, pending_only=False)
        answer = answer_for_closed(recent)
        return _reply(patients[0] if recent is None else recent.patient, recent, answer)
    answer = accept(offer) if accept_it else decline(offer)
    log.info("inbound answer for offer %s: %s", offer.id, answer.value)
    return _reply(offer.patient, offer, answer)


def _reply(patient: Patient, offer: Offer | None, answer: Answer) -> str:
    if offer is None:
        answer = Answer.NONE
    return render_reply("sms/reply.txt", patient, offer, answer=answer.value)


def _store_once(sms: InboundSms, word: str) -> bool:
    stored = db.session.scalar(
        insert(DeliveryEvent)
        .values(
            provider_id=sms.message_sid[:64],
            status=f"inbound:{word if word in KEYWORDS else 'other'}",
            idempotency_key=f"twilio-inbound:{sms.message_sid}"[:160],
            received_at=now_utc(),
        )
        .on_conflict_do_nothing(index_elements=[DeliveryEvent.idempotency_key])
        .returning(DeliveryEvent.id)
    )
    return stored is not None


def _set_opt_out(patients: list[Patient], opted_out: bool) -> None:
    actor = Actor.webhook("twilio")
    for patient in patients:
        if patient.sms_opt_out != opted_out:
            patient.sms_opt_out = opted_out
            record(actor, Action.PATIENT_SMS_OPT_OUT, patient, after={"sms_opt_out": opted_out})
            log.info("patient %s sms_opt_out=%s (inbound text)", patient.id, opted_out)
