"""The one place that picks the configured payment provider (or none: the desk)."""

from __future__ import annotations

from flask import current_app

from portal.services.payments.base import (
    CheckoutSession,
    InvalidWebhook,
    PaymentProvider,
    PaymentResult,
    ProviderError,
)

__all__ = [
    "CheckoutSession",
    "InvalidWebhook",
    "PaymentProvider",
    "PaymentResult",
    "ProviderError",
    "get_provider",
]

_EXTENSION = "portal_payment_provider"


def get_provider() -> PaymentProvider | None:
    """The configured provider (built once per app), or None: payments at the desk."""
    app = current_app
    if _EXTENSION not in app.extensions:
        provider = None
        if app.config.get("STRIPE_SECRET_KEY"):
            from portal.services.payments.stripe_provider import StripeProvider

            provider = StripeProvider(
                secret_key=app.config["STRIPE_SECRET_KEY"],
                webhook_secret=app.config.get("STRIPE_WEBHOOK_SECRET", ""),
                api_base=app.config.get("STRIPE_API_BASE", ""),
                timeout=app.config.get("STRIPE_TIMEOUT_SECONDS", 10.0),
            )
        app.extensions[_EXTENSION] = provider
    return app.extensions[_EXTENSION]
