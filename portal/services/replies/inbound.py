"""Texts from patients: YES/NO answer an offer, C/YES confirm a reminded visit, R asks
for a reschedule link, STOP (in any reasonable wording)/START/HELP manage opt-out.

What a text means is read in ``keywords.classify``. With Twilio's Advanced Opt-Out on,
Twilio answers STOP/START/HELP itself and tells us through ``OptOutType``; we then only
record the change and reply nothing. Each inbound message is stored once as a
``DeliveryEvent`` (keyed by its MessageSid), so a redelivered webhook does not answer
twice.
"""

from __future__ import annotations

import logging
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
from portal.services.replies.appointments import (
    cancel_help_reply,
    confirm_by_text,
    help_reply,
    reschedule_link_reply,
    yes_means_confirm,
)
from portal.services.replies.keywords import Intent, classify

log = logging.getLogger(__name__)

#: Only these are ever stored (the rest of a text may hold anything).
STORED_INTENTS = frozenset(Intent) - {Intent.OTHER}


@dataclass(frozen=True)
class InboundSms:
    message_sid: str
    from_number: str
    body: str
    opt_out_type: str | None = None


def handle_inbound(sms: InboundSms) -> str | None:
    """Act on one inbound text; return the reply to send, if any (flushes).

    Precedence: Twilio's own opt-out handling, then STOP (any reasonable wording: one
    confirmation, none again while opted out), START, HELP (always answered, with the
    clinic's name and number, even to an unknown or opted-out number). A known patient's
    YES goes to whatever they were asked last — a reminder ("C or YES to confirm") or a
    pending offer ("YES to book") — see ``replies.appointments.yes_means_confirm``.
    """
    intent = classify(sms.body)
    twilio_handled = (sms.opt_out_type or "").upper()
    if not _store_once(sms, intent):
        return None
    patients = list(
        db.session.scalars(sa.select(Patient).where(Patient.phone_e164 == sms.from_number))
    )
    if twilio_handled == "STOP" or intent == Intent.STOP:
        changed = _set_opt_out(patients, True)
        if twilio_handled or not changed:
            return None  # Twilio confirmed it, or we already did: one confirmation only
        return render_reply("sms/stopped.txt", patients[0])
    if twilio_handled == "START" or intent == Intent.START:
        _set_opt_out(patients, False)
        return (
            None if twilio_handled or not patients else render_reply("sms/started.txt", patients[0])
        )
    if twilio_handled == "HELP" or intent == Intent.HELP:
        return None if twilio_handled else help_reply(patients[0] if patients else None)
    if not patients:
        log.info("inbound text %s from an unknown number", sms.message_sid)
        return None
    if intent == Intent.YES:
        _set_opt_out(patients, False)  # texting YES to us is opting in, as Twilio treats it
    elif any(p.sms_opt_out for p in patients):
        log.info("inbound text %s from an opted-out number: no reply", sms.message_sid)
        return None
    return _answer(patients, intent)


def _answer(patients: list[Patient], intent: Intent) -> str:
    ids = [p.id for p in patients]
    if intent == Intent.CONFIRM or (intent == Intent.YES and yes_means_confirm(ids)):
        return confirm_by_text(patients)
    if intent == Intent.RESCHEDULE:
        return reschedule_link_reply(patients)
    if intent == Intent.CANCEL_VISIT:
        return cancel_help_reply(patients)
    if intent in (Intent.YES, Intent.NO):
        return _answer_offer(patients, accept_it=intent == Intent.YES)
    return help_reply(patients[0])


def _answer_offer(patients: list[Patient], *, accept_it: bool) -> str:
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


def _store_once(sms: InboundSms, intent: Intent) -> bool:
    stored = db.session.scalar(
        insert(DeliveryEvent)
        .values(
            provider_id=sms.message_sid[:64],
            status=f"inbound:{intent.value if intent in STORED_INTENTS else 'other'}",
            idempotency_key=f"twilio-inbound:{sms.message_sid}"[:160],
            received_at=now_utc(),
        )
        .on_conflict_do_nothing(index_elements=[DeliveryEvent.idempotency_key])
        .returning(DeliveryEvent.id)
    )
    return stored is not None


def _set_opt_out(patients: list[Patient], opted_out: bool) -> bool:
    """Record the patients' choice; whether anything changed."""
    actor = Actor.webhook("twilio")
    changed = False
    for patient in patients:
        if patient.sms_opt_out != opted_out:
            patient.sms_opt_out = opted_out
            changed = True
            record(actor, Action.PATIENT_SMS_OPT_OUT, patient, after={"sms_opt_out": opted_out})
            log.info("patient %s sms_opt_out=%s (inbound text)", patient.id, opted_out)
    return changed
