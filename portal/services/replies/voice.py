"""Calls: the TwiML Twilio fetches when the patient answers, and the key they press.

The call URL carries a signed token naming the attempt. An offer call reads the offer
in the patient's zone inside a ``<Gather>`` ("press 1 to accept, 2 to decline"); the
gather action answers through the same atomic accept as the offer page and says how
it went. Other messages are simply read out.
"""

from __future__ import annotations

from twilio.twiml.voice_response import Gather, VoiceResponse

from portal.db import db, now_utc
from portal.models import NotificationAttempt, Offer
from portal.models.enums import Channel, Purpose
from portal.services.notify.chain import still_relevant
from portal.services.notify.messages import render_message, render_reply
from portal.services.replies.answers import Answer, accept, decline

GATHER_SECONDS = 8


def _say(response: VoiceResponse | Gather, text: str) -> None:
    response.say(text)


def _offer_for(attempt: NotificationAttempt) -> Offer | None:
    notification = attempt.notification
    if notification.purpose != Purpose.OFFER or not notification.offer_id:
        return None
    return db.session.get(Offer, notification.offer_id)


def call_twiml(attempt_id: int | None, gather_url: str) -> str:
    """Return what the call says when it is answered."""
    response = VoiceResponse()
    attempt = db.session.get(NotificationAttempt, attempt_id) if attempt_id else None
    if attempt is None or attempt.channel != Channel.VOICE:
        _say(response, "Sorry, this message is no longer available. Goodbye.")
        return str(response)
    notification = attempt.notification
    offer = _offer_for(attempt)
    if offer is not None and not still_relevant(notification, now_utc()):
        _say(response, render_reply("voice/gather.txt", offer.patient, offer, answer="unavailable"))
        return str(response)
    text = render_message(notification, Channel.VOICE).body
    if offer is None:
        _say(response, text)
        return str(response)
    gather = Gather(num_digits=1, action=gather_url, method="POST", timeout=GATHER_SECONDS)
    _say(gather, text)
    response.append(gather)
    _say(response, render_reply("voice/gather.txt", offer.patient, offer, answer="noinput"))
    return str(response)


def gather_twiml(attempt_id: int | None, digits: str, retry_url: str) -> str:
    """Act on the key pressed during an offer call (flushes; the caller commits)."""
    response = VoiceResponse()
    attempt = db.session.get(NotificationAttempt, attempt_id) if attempt_id else None
    offer = _offer_for(attempt) if attempt is not None else None
    if offer is None:
        _say(response, "Sorry, this message is no longer available. Goodbye.")
        return str(response)
    if digits not in ("1", "2"):
        _say(response, render_reply("voice/gather.txt", offer.patient, offer, answer="retry"))
        response.redirect(retry_url, method="POST")
        return str(response)
    answer: Answer = accept(offer) if digits == "1" else decline(offer)
    _say(response, render_reply("voice/gather.txt", offer.patient, offer, answer=answer.value))
    response.hangup()
    return str(response)
