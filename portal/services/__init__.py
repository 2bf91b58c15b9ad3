"""The domain: plain functions that take session-bound objects or ids and an actor.

Services flush and write audit events; they never commit (the request, job or CLI
command that called them does) and never read ``request`` or ``current_user``.
"""
