"""Taking money: a small provider interface, the Stripe adapter, and what uses them.

``provider.get_provider()`` returns the configured provider (Stripe when
``STRIPE_SECRET_KEY`` is set) or None, in which case the front desk records payments
in the ledger by hand. Provider calls never run inside a transaction that holds a lock:
callers read, end the transaction, call, then write the outcome in a new one. Every
call carries an idempotency key, so a retry after a timeout cannot charge twice.
"""
