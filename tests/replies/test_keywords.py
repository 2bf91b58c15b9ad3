"""What a patient's text means: the opt-out wording table and the other keywords."""

from __future__ import annotations

import pytest

from portal.services.replies.keywords import Intent, classify

OPT_OUTS = [
    "STOP",
    "stop",
    " Stop. ",
    "STOP!!!",
    "STOPALL",
    "stop all",
    "UNSUBSCRIBE",
    "unsubscribe me please",
    "CANCEL",
    "cancel",
    "END",
    "end",
    "QUIT",
    "quit it",
    "REVOKE",
    "OPT OUT",
    "opt-out",
    "OptOut",
    "Opt me out",
    "please stop texting me",
    "Please stop sending me messages",
    "stop please",
    "Don't text me again",
    "do not contact me",
    "no more texts thanks",
    "No more messages!",
    "Never text this number again",
    "take me off your list",
    "Please remove me from your list",
    "remove my number from the list",
    "wrong number",
    "Leave me alone",
    "I want to opt out",
    "STOP \U0001f621",
]


@pytest.mark.parametrize("body", OPT_OUTS)
def test_every_reasonable_opt_out_wording_opts_out(body: str) -> None:
    assert classify(body) == Intent.STOP


@pytest.mark.parametrize(
    ("body", "intent"),
    [
        # Mentioning cancelling a visit is not an opt-out: it gets the appointment link.
        ("I need to cancel my appointment", Intent.CANCEL_VISIT),
        ("Can I cancel?", Intent.CANCEL_VISIT),
        ("cancel appointment please", Intent.CANCEL_VISIT),
        ("C", Intent.CONFIRM),
        ("c", Intent.CONFIRM),
        ("Confirm", Intent.CONFIRM),
        ("Confirmed, thanks!", Intent.CONFIRM),
        ("C thanks", Intent.CONFIRM),
        ("R", Intent.RESCHEDULE),
        ("reschedule please", Intent.RESCHEDULE),
        ("YES", Intent.YES),
        ("yes!", Intent.YES),
        ("Yes please", Intent.YES),
        ("Y", Intent.YES),
        ("1", Intent.YES),
        ("NO", Intent.NO),
        ("No thanks", Intent.NO),
        ("2", Intent.NO),
        ("START", Intent.START),
        ("unstop", Intent.START),
        ("HELP", Intent.HELP),
        ("info", Intent.HELP),
        ("Help me please", Intent.HELP),
        ("Can I come at 3 instead?", Intent.OTHER),
        ("See you tomorrow", Intent.OTHER),
        ("the end of the week works", Intent.OTHER),
        ("", Intent.OTHER),
        ("!!!", Intent.OTHER),
    ],
)
def test_other_texts(body: str, intent: Intent) -> None:
    assert classify(body) == intent
