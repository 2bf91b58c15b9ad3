"""Patients answering us: inbound texts (YES/NO, STOP/START/HELP) and offer calls' keypresses.

Kept apart from ``notify`` (which only sends): answering an offer books through
``responses``/``booking``, and booking sends messages through ``notify``, so the two
directions would otherwise import each other.
"""
