"""The manual outreach queue: order, race-safe claims, outcomes through the normal paths."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import Appointment, AuditEvent, Offer, OutreachTask, PatientFlag, StaffUser
from portal.models.enums import (
    AppointmentSource,
    FlagKind,
    OfferStatus,
    OutreachOutcome,
    OutreachPriority,
    SlotStatus,
    WaitlistStatus,
)
from portal.services import outreach, outreach_calls
from portal.services.errors import Conflict
from tests import factories as f
from tests.conftest import csrf_token_from
from tests.races import race
from tests.staff import ops_factories as ops
from tests.staff.conftest import HTMX, PASSWORD, form_token


def _outcome(client: FlaskClient, task: OutreachTask, **data: str) -> object:
    token = form_token(client, f"/staff/outreach/{task.id}")
    return client.post(f"/staff/outreach/{task.id}/outcome", data={"csrf_token": token, **data})


def test_queue_needs_a_signed_in_user(client: FlaskClient) -> None:
    response = client.get("/staff/outreach")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_queue_lists_overdue_then_due_by_deadline_and_priority(signed_in: FlaskClient) -> None:
    now = now_utc()
    later = ops.offer_task(deadline=now + timedelta(hours=2), patient=f.patient(name="Later Lee"))
    overdue = ops.offer_task(
        deadline=now - timedelta(minutes=5), patient=f.patient(name="Late Lou")
    )
    low = ops.message_task(
        deadline=now + timedelta(hours=1),
        priority=OutreachPriority.LOW,
        patient=f.patient(name="Low Lia"),
    )
    high = ops.message_task(deadline=now + timedelta(hours=1), patient=f.patient(name="High Hal"))
    waiting = ops.message_task(
        deadline=now - timedelta(hours=1),
        retry_at=now + timedelta(minutes=20),
        patient=f.patient(name="Wait Wes"),
    )
    db.session.commit()

    assert [t.id for t in outreach.open_tasks()] == [
        overdue.id,
        high.id,
        low.id,
        later.id,
        waiting.id,
    ]
    html = signed_in.get("/staff/outreach").text
    names = ["Late Lou", "High Hal", "Low Lia", "Later Lee", "Wait Wes"]
    assert [html.index(n) for n in names] == sorted(html.index(n) for n in names)
    overdue_row = html.split(f'id="task-{overdue.id}"')[1].split("</tr>")[0]
    assert "Overdue" in overdue_row  # a word, not only a colour
    assert "Call again after" in html.split(f'id="task-{waiting.id}"')[1].split("</tr>")[0]
    counts = outreach.queue_counts()
    assert (counts.due, counts.overdue) == (4, 1)


def test_empty_queue_says_what_happens(signed_in: FlaskClient) -> None:
    assert "Nobody needs a call right now" in signed_in.get("/staff/outreach").text


@pytest.mark.parametrize("rounds", [8])
def test_two_staff_claiming_at_once_get_one_owner(app: Flask, rounds: int) -> None:
    for _ in range(rounds):
        task = ops.offer_task()
        ana, ben = f.staff_user(), f.staff_user()
        db.session.commit()
        task_id, ids = task.id, (ana.id, ben.id)

        def claim(staff_id: int, task_id: int = task_id) -> str:
            user = db.session.get(StaffUser, staff_id)
            return f"claimed:{outreach_calls.claim_task(task_id, user).claimed_by_id}"

        outcomes = race(app, [lambda i=i: claim(i) for i in ids], jitter=0.005)
        assert sorted(outcomes.values()) == [1, 1], outcomes
        assert outcomes["task_claimed"] == 1, outcomes
        db.session.expire_all()
        owner = db.session.get(OutreachTask, task_id).claimed_by_id
        assert outcomes[f"claimed:{owner}"] == 1


def _login(base: str, email: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    page = session.get(f"{base}/staff/login", timeout=10).text
    session.post(
        f"{base}/staff/login",
        data={"csrf_token": csrf_token_from(page), "email": email, "password": PASSWORD},
        timeout=10,
    )
    return session, csrf_token_from(session.get(f"{base}/staff/outreach", timeout=10).text)


def test_two_staff_clicking_claim_over_http_get_one_owner(live_server: str) -> None:
    ana, ben = f.staff_user(password=PASSWORD), f.staff_user(password=PASSWORD)
    task = ops.offer_task()
    db.session.commit()
    clients = [_login(live_server, u.email) for u in (ana, ben)]
    barrier, results = threading.Barrier(2), ["", ""]
    claim_url = f"{live_server}/staff/outreach/{task.id}/claim"

    def click(i: int) -> None:
        session, token = clients[i]
        barrier.wait()
        results[i] = session.post(
            claim_url,
            data={"csrf_token": token},
            timeout=30,
        ).text

    threads = [threading.Thread(target=click, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [r for r in results if "You have claimed the call" in r]
    lost = [r for r in results if "has already claimed this task" in r]
    assert (len(won), len(lost)) == (1, 1)
    db.session.expire_all()
    assert db.session.get(OutreachTask, task.id).claimed_by_id in (ana.id, ben.id)


def test_a_claim_nobody_works_lapses(app: Flask) -> None:
    task, ana, ben = ops.offer_task(), f.staff_user(), f.staff_user()
    outreach_calls.claim_task(task.id, ana)
    with pytest.raises(Conflict):
        outreach_calls.claim_task(task.id, ben)
    later = now_utc() + timedelta(minutes=16)  # the default claim lasts 15 minutes
    assert outreach_calls.claim_task(task.id, ben, now=later).claimed_by_id == ben.id


def test_claim_from_the_queue_opens_the_call_script(
    signed_in: FlaskClient, staff: StaffUser
) -> None:
    la = f.location(timezone="America/Los_Angeles")
    slot = f.slot(practitioner=f.practitioner(location=la))
    patient = f.patient(name="Nia Caller", timezone="America/New_York")
    task = ops.offer_task(slot=slot, patient=patient)
    db.session.commit()
    token = form_token(signed_in, "/staff/outreach")
    response = signed_in.post(f"/staff/outreach/{task.id}/claim", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/staff/outreach/{task.id}")
    page = signed_in.get(response.headers["Location"]).text
    assert "You have claimed the call to Nia Caller" in page
    assert "May I speak with Nia" in page.replace("may I", "May I")
    assert " EST" in page and " PST" in page  # the patient's zone and the clinic's


def test_claim_without_csrf_is_refused(signed_in: FlaskClient) -> None:
    task = ops.offer_task()
    db.session.commit()
    response = signed_in.post(f"/staff/outreach/{task.id}/claim")
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(OutreachTask, task.id).claimed_by_id is None


def test_htmx_claim_and_release_return_the_queue_fragment(signed_in: FlaskClient) -> None:
    task = ops.offer_task()
    db.session.commit()
    token = form_token(signed_in, "/staff/outreach")
    signed_in.post(f"/staff/outreach/{task.id}/claim", data={"csrf_token": token})
    response = signed_in.post(
        f"/staff/outreach/{task.id}/release", data={"csrf_token": token}, headers=HTMX
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="outreach-queue">')
    assert "<html" not in response.text and "back in the queue" in response.text
    full = signed_in.get("/staff/outreach").text
    assert "<html" in full and 'id="outreach-queue"' in full


def test_reached_and_accepted_books_through_the_normal_path(signed_in: FlaskClient) -> None:
    task = ops.offer_task()
    db.session.commit()
    response = _outcome(signed_in, task, outcome="reached_accepted", notes="happy to come")
    assert response.status_code == 303
    db.session.expire_all()
    appointment = db.session.scalar(
        sa.select(Appointment).where(Appointment.offer_id == task.offer_id)
    )
    assert appointment is not None and appointment.source == AppointmentSource.WAITLIST
    assert appointment.slot.status == SlotStatus.BOOKED
    done = db.session.get(OutreachTask, task.id)
    assert done.completed_at is not None and done.outcome == OutreachOutcome.REACHED_ACCEPTED
    actions = set(db.session.scalars(sa.select(AuditEvent.action)))
    assert {"offer.accepted", "outreach.outcome_recorded"} <= actions


def test_reached_and_declined_declines_the_offer(signed_in: FlaskClient) -> None:
    task = ops.offer_task()
    db.session.commit()
    _outcome(signed_in, task, outcome="reached_declined")
    db.session.expire_all()
    assert db.session.get(Offer, task.offer_id).status == OfferStatus.DECLINED


def test_accepting_an_offer_that_ended_says_so_and_records_nothing(signed_in: FlaskClient) -> None:
    task = ops.offer_task()
    db.session.get(Offer, task.offer_id).status = OfferStatus.WITHDRAWN
    db.session.commit()
    response = _outcome(signed_in, task, outcome="reached_accepted")
    assert response.status_code == 409 and "This offer is withdrawn" in response.text
    db.session.expire_all()
    assert db.session.get(OutreachTask, task.id).completed_at is None


def test_no_answer_keeps_the_task_open_until_the_retry_time(signed_in: FlaskClient) -> None:
    task = ops.message_task()
    db.session.commit()
    before = now_utc()
    _outcome(signed_in, task, outcome="not_reached", retry_minutes="60")
    db.session.expire_all()
    kept = db.session.get(OutreachTask, task.id)
    assert kept.completed_at is None and kept.call_attempts == 1 and kept.claimed_by_id is None
    assert timedelta(minutes=59) < kept.retry_at - before < timedelta(minutes=61)
    assert outreach.queue_counts().due == 0


def test_wrong_number_flags_the_patient(signed_in: FlaskClient) -> None:
    task = ops.message_task()
    db.session.commit()
    _outcome(signed_in, task, outcome="wrong_number", notes="a bakery answered")
    db.session.expire_all()
    flag = db.session.scalar(
        sa.select(PatientFlag).where(PatientFlag.patient_id == task.patient_id)
    )
    assert flag.kind == FlagKind.INVALID_PHONE and "bakery" in flag.notes
    assert db.session.get(OutreachTask, task.id).outcome == OutreachOutcome.WRONG_NUMBER


def test_voicemail_finishes_the_task(signed_in: FlaskClient) -> None:
    task = ops.message_task()
    db.session.commit()
    _outcome(signed_in, task, outcome="left_message")
    db.session.expire_all()
    assert db.session.get(OutreachTask, task.id).completed_at is not None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Choose what happened on the call."),
        ({"outcome": "nonsense"}, "Choose what happened on the call."),
        ({"outcome": "not_reached", "retry_minutes": "-5"}, "Choose when to call again."),
        ({"outcome": "reached"}, "That outcome does not fit this task."),
    ],
)
def test_bad_outcomes_get_a_message_on_the_form(
    signed_in: FlaskClient, data: dict[str, str], message: str
) -> None:
    task = ops.offer_task()
    db.session.commit()
    response = _outcome(signed_in, task, **data)
    assert response.status_code in (409, 422)
    assert message in response.text
    db.session.expire_all()
    assert db.session.get(OutreachTask, task.id).completed_at is None


def test_someone_elses_claim_blocks_recording(signed_in: FlaskClient) -> None:
    task = ops.offer_task()
    other = f.staff_user(name="Olive Other")
    outreach_calls.claim_task(task.id, other)
    db.session.commit()
    page = signed_in.get(f"/staff/outreach/{task.id}").text
    assert "Olive Other is working on this call" in page
    response = _outcome(signed_in, task, outcome="left_message")
    assert response.status_code == 409 and "Olive Other has already claimed" in response.text


def test_tasks_for_offers_that_ended_close_themselves(app: Flask) -> None:
    ended = ops.offer_task()
    expired = ops.offer_task()
    live = ops.offer_task()
    other = ops.message_task()
    db.session.get(Offer, ended.offer_id).status = OfferStatus.ACCEPTED
    db.session.get(Offer, expired.offer_id).window_expires_at = now_utc() - timedelta(minutes=1)
    db.session.commit()

    from jobs.outreach import close_ended_outreach

    assert close_ended_outreach() == 2
    db.session.expire_all()
    closed = {t.id: t.outcome for t in db.session.scalars(sa.select(OutreachTask))}
    assert closed == {
        ended.id: OutreachOutcome.NOT_NEEDED,
        expired.id: OutreachOutcome.NOT_NEEDED,
        live.id: None,
        other.id: None,
    }


def test_a_patient_reached_by_phone_can_accept_though_the_chain_gave_up(
    signed_in: FlaskClient,
) -> None:
    task = ops.offer_task()
    offer = db.session.get(Offer, task.offer_id)
    offer.waitlist_entry.status = WaitlistStatus.UNREACHABLE  # what exhausting every channel did
    db.session.commit()
    response = _outcome(signed_in, task, outcome="reached_accepted")
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Offer, task.offer_id).status == OfferStatus.ACCEPTED
    actions = [e.action for e in db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))]
    assert "waitlist.resumed" in actions and "offer.accepted" in actions
