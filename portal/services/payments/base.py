"""The payment provider interface: what a provider does, and what it answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from portal.models import Charge


class ProviderError(Exception):
    """The provider refused or failed; ``transient`` errors are worth retrying."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class InvalidWebhook(Exception):
    """A webhook whose signature or body does not verify."""


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class PaymentResult:
    """An off-session charge's outcome: ``succeeded`` or not (then ``reason`` says why)."""

    succeeded: bool
    ref: str | None
    reason: str = ""


class PaymentProvider(Protocol):
    def create_checkout(
        self,
        *,
        charge: Charge,
        customer_id: str | None,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        """Start a hosted payment page for ``charge`` that also saves the card."""

    def charge_saved_card(
        self, *, charge: Charge, customer_id: str, idempotency_key: str
    ) -> PaymentResult:
        """Charge the customer's saved card without them present."""

    def refund(self, *, payment_ref: str, amount_cents: int, idempotency_key: str) -> str:
        """Refund a payment; return the refund's id."""

    def verify_webhook(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        """Return the event if its signature verifies, else raise ``InvalidWebhook``."""
