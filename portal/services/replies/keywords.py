"""What a patient's text means: one word or a plain sentence, read the same way everywhere.

Opting out is honoured for any reasonable wording — the carrier keywords (STOP,
STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPT OUT) on their own, a text that
starts with a firm one ("Stop please"), and sentences such as "please stop texting
me" or "take me off your list". A sentence that merely mentions cancelling ("I need
to cancel my appointment") is *not* an opt-out: it asks about the visit, and gets the
appointment link (reminders never ask anyone to reply CANCEL).
"""

from __future__ import annotations

import re
from enum import StrEnum


class Intent(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"
    YES = "yes"
    NO = "no"
    CONFIRM = "confirm"  # C: confirm the appointment a reminder asked about
    RESCHEDULE = "reschedule"  # R: send the reschedule link
    CANCEL_VISIT = "cancel_visit"  # asks to cancel a visit (answered with the page link)
    OTHER = "other"


#: Whole-text keywords (after normalising case, punctuation and spaces).
EXACT = {
    **dict.fromkeys(
        ["STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "UNSUB", "CANCEL", "END", "QUIT"],
        Intent.STOP,
    ),
    **dict.fromkeys(["REVOKE", "OPTOUT", "OPT OUT"], Intent.STOP),
    **dict.fromkeys(["START", "UNSTOP"], Intent.START),
    **dict.fromkeys(["HELP", "INFO"], Intent.HELP),
    **dict.fromkeys(["C", "CONFIRM", "CONFIRMED"], Intent.CONFIRM),
    **dict.fromkeys(["R", "RESCHEDULE"], Intent.RESCHEDULE),
    **dict.fromkeys(["YES", "Y", "1"], Intent.YES),
    **dict.fromkeys(["NO", "N", "2"], Intent.NO),
}
#: A text starting with one of these is an opt-out whatever follows ("STOP!!", "quit it").
FIRM_STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "QUIT", "REVOKE", "OPTOUT"})
#: Sentences asking us to stop (matched on the normalised text).
STOP_SENTENCES = (
    re.compile(
        r"\b(STOP|QUIT|CEASE|END|NO MORE|DONT|DO NOT|NEVER)\b.*"
        r"\b(TEXT|TEXTS|TEXTING|TXT|TXTS|SMS|MESSAGE|MESSAGES|MESSAGING|CONTACT|CONTACTING)\b"
    ),
    re.compile(r"\bUNSUBSCRIBE\b|\bOPT ?OUT\b|\bOPT ME OUT\b|\bSTOP ?ALL\b"),
    re.compile(r"\b(REMOVE|TAKE)\b.*\b(ME|MY NUMBER|THIS NUMBER)\b.*\b(LIST|OFF)\b"),
    re.compile(r"\bWRONG NUMBER\b|\bLEAVE ME ALONE\b"),
)
#: First words that answer the way the whole keyword does ("Yes please", "C thanks").
FIRST_WORD = {
    "YES": Intent.YES,
    "Y": Intent.YES,
    "NO": Intent.NO,
    "C": Intent.CONFIRM,
    "CONFIRM": Intent.CONFIRM,
    "CONFIRMED": Intent.CONFIRM,
    "R": Intent.RESCHEDULE,
    "RESCHEDULE": Intent.RESCHEDULE,
    "HELP": Intent.HELP,
    "START": Intent.START,
    "UNSTOP": Intent.START,
}

_NOT_WORD = re.compile(r"[^A-Z0-9 ]+")
_SPACES = re.compile(r"\s+")


def normalise(body: str) -> str:
    """Upper-case words separated by single spaces ("Don't text me!" → "DONT TEXT ME")."""
    text = (body or "").upper().replace("'", "").replace("\u2019", "")
    return _SPACES.sub(" ", _NOT_WORD.sub(" ", text)).strip()


def classify(body: str) -> Intent:
    """Read one inbound text."""
    text = normalise(body)
    if not text:
        return Intent.OTHER
    if text in EXACT:
        return EXACT[text]
    first = text.split(" ", 1)[0]
    if first in FIRM_STOP_WORDS or any(p.search(text) for p in STOP_SENTENCES):
        return Intent.STOP
    if re.search(r"\bCANCEL\w*\b", text):
        return Intent.CANCEL_VISIT
    return FIRST_WORD.get(first, Intent.OTHER)
