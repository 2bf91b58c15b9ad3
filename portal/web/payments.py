"""Stripe: the signed webhook (``POST /webhooks/stripe``) and paying for a hold.

The webhook verifies ``Stripe-Signature`` against ``STRIPE_WEBHOOK_SECRET`` (400
otherwise, and when no provider is configured), applies the event in one transaction
and answers 200 — a payment that can no longer book is recorded and refunded, still
200; an event it cannot apply yet (a deadlock two reruns did not clear) answers 409, so
Stripe delivers it again.
``POST /o/<token>/pay`` starts Checkout for the held slot's deposit or prepayment (the
provider is called outside any transaction) and sends the patient there.
"""

from __future__ import annotations

import logging

from flask import Blueprint, flash, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue

from portal.db import db, now_utc
from portal.extensions import csrf, limiter
from portal.services.errors import DomainError
from portal.services.links import offer_url
from portal.services.payments import webhooks
from portal.services.payments.provider import InvalidWebhook, ProviderError, get_provider
from portal.services.responses import OfferState, offer_state
from portal.web import patient_views as views
from portal.web.patient import POST_LIMIT, load_offer
from portal.web.patient import bp as patient_bp
from portal.web.transaction import commit_or_conflict

log = logging.getLogger(__name__)

bp = Blueprint("payments", __name__)
csrf.exempt(bp)

#: Stripe's events are small; anything bigger is not one.
MAX_EVENT_BYTES = 256 * 1024


@bp.post("/webhooks/stripe")
def stripe_webhook() -> ResponseReturnValue:
    """Apply one signed Stripe event (idempotent: duplicates and reorderings are harmless)."""
    provider = get_provider()
    payload = request.get_data(cache=False)
    if provider is None or len(payload) > MAX_EVENT_BYTES:
        return jsonify(error={"code": "invalid_webhook", "message": "Not accepted."}), 400
    try:
        event = provider.verify_webhook(payload, request.headers.get("Stripe-Signature"))
    except InvalidWebhook:
        return jsonify(error={"code": "invalid_signature", "message": "Bad signature."}), 400
    try:
        outcome = commit_or_conflict(lambda: webhooks.handle_event(event))
    except DomainError as exc:
        log.info("stripe event %s not applied (%s)", event.get("id"), exc.code)
        return jsonify(error={"code": exc.code, "message": exc.message}), 409
    log.info("stripe event %s (%s): %s", event.get("id"), event.get("type"), outcome)
    return jsonify(received=True, outcome=outcome)


@patient_bp.post("/o/<token>/pay")
@limiter.limit(POST_LIMIT)
def pay_for_hold(token: str) -> ResponseReturnValue:
    """Send the patient to Stripe Checkout for the deposit or prepayment their hold awaits."""
    offer = load_offer(token)
    provider = get_provider()
    back = url_for("patient.offer", token=token)
    if provider is None or offer_state(offer, now_utc()) != OfferState.HELD:
        return redirect(back, 303)
    charge = views.pending_charge(offer)
    if charge is None:
        return redirect(back, 303)
    customer_id = offer.patient.stripe_customer_id
    here = offer_url(offer.id, offer.patient_id, offer.slot.start_at)
    db.session.rollback()  # nothing of ours stays open while Stripe answers
    try:
        session = provider.create_checkout(
            charge=charge,
            customer_id=customer_id,
            success_url=here,
            cancel_url=here,
            idempotency_key=f"checkout:charge:{charge.id}",
        )
    except ProviderError:
        flash("Online payment isn't available right now. Please call the clinic.", "error")
        return redirect(back, 303)
    return redirect(session.url, 303)
