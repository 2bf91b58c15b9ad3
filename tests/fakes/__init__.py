"""Test doubles for external services: a fake Twilio API and a local SMTP server."""
