"""Notification delivery: channels, the chain, receipts, webhooks, faults."""
