"""The Stripe adapter, on the official ``stripe`` SDK (``StripeClient``).

Checkout sessions for deposits and prepayments save the card for later
(``setup_future_usage=off_session``); cancellation fees are PaymentIntents confirmed
off-session on that card. Every request carries the caller's idempotency key, and the
SDK's own retries are off: a timeout is reported as transient and the caller's retry
reuses the key, so Stripe answers it with the first attempt's result.
``STRIPE_API_BASE`` points the client at another host (the tests' local fake).
"""

from __future__ import annotations

from typing import Any

import stripe

from portal.models import Charge
from portal.services.payments.base import (
    CheckoutSession,
    InvalidWebhook,
    PaymentResult,
    ProviderError,
)

CURRENCY = "usd"


class StripeProvider:
    def __init__(self, *, secret_key: str, webhook_secret: str, api_base: str, timeout: float):
        options: dict[str, Any] = {}
        if api_base:
            options["base_addresses"] = {"api": api_base.rstrip("/")}
        self.client = stripe.StripeClient(
            secret_key,
            http_client=stripe.RequestsClient(timeout=timeout),
            max_network_retries=0,
            **options,
        )
        self.webhook_secret = webhook_secret

    def create_checkout(
        self,
        *,
        charge: Charge,
        customer_id: str | None,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        metadata = {"charge_id": str(charge.id), "offer_id": str(charge.offer_id or "")}
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": CURRENCY,
                        "unit_amount": charge.amount_cents,
                        "product_data": {"name": charge.description or charge.kind.value},
                    },
                }
            ],
            "client_reference_id": str(charge.id),
            "metadata": metadata,
            "payment_intent_data": {"setup_future_usage": "off_session", "metadata": metadata},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        if customer_id:
            params["customer"] = customer_id
        else:
            params["customer_creation"] = "always"
        session = self._call(self.client.v1.checkout.sessions.create, params, idempotency_key)
        return CheckoutSession(session.id, session.url)

    def charge_saved_card(
        self, *, charge: Charge, customer_id: str, idempotency_key: str
    ) -> PaymentResult:
        methods = self._call(
            self.client.v1.payment_methods.list,
            {"customer": customer_id, "type": "card", "limit": 1},
            None,
        )
        if not methods.data:
            return PaymentResult(False, None, "no saved card")
        params = {
            "amount": charge.amount_cents,
            "currency": CURRENCY,
            "customer": customer_id,
            "payment_method": methods.data[0].id,
            "off_session": True,
            "confirm": True,
            "description": charge.description,
            "metadata": {"charge_id": str(charge.id)},
        }
        try:
            intent = self._call(self.client.v1.payment_intents.create, params, idempotency_key)
        except stripe.CardError as exc:
            intent_id = getattr(getattr(exc, "error", None), "payment_intent", None)
            ref = intent_id.get("id") if isinstance(intent_id, dict) else None
            return PaymentResult(False, ref, exc.user_message or "card declined")
        if intent.status == "succeeded":
            return PaymentResult(True, intent.id)
        return PaymentResult(False, intent.id, f"payment {intent.status}")

    def refund(self, *, payment_ref: str, amount_cents: int, idempotency_key: str) -> str:
        params = {"payment_intent": payment_ref, "amount": amount_cents}
        return self._call(self.client.v1.refunds.create, params, idempotency_key).id

    def verify_webhook(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        if not self.webhook_secret or not signature:
            raise InvalidWebhook("no signature, or no webhook secret configured")
        try:
            event = stripe.Webhook.construct_event(payload, signature, self.webhook_secret)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise InvalidWebhook(type(exc).__name__) from None
        return event.to_dict()

    @staticmethod
    def _call(method: Any, params: dict[str, Any], idempotency_key: str | None) -> Any:
        options = {"idempotency_key": idempotency_key} if idempotency_key else {}
        try:
            return method(params, options)
        except stripe.CardError:
            raise
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise ProviderError(type(exc).__name__, transient=True) from None
        except stripe.APIError as exc:
            raise ProviderError(type(exc).__name__, transient=True) from None
        except stripe.StripeError as exc:
            raise ProviderError(f"{type(exc).__name__}: {exc.user_message or ''}") from None
