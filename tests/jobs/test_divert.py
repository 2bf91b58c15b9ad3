"""``queue.divert_jobs``: while set, every enqueue goes to the sink, none to Redis."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from redis import Redis

from portal.db import db, now_utc
from portal.queue import divert_jobs, schedule


@pytest.mark.usefixtures("app")
def test_diverted_jobs_reach_the_sink_one_by_one_and_batched(app: Flask) -> None:
    later = now_utc() + timedelta(minutes=5)
    got = []
    with divert_jobs(lambda spec, args, at, job_id: got.append((spec.path, args, at))):
        schedule("fill_slot", 1)
        schedule("fill_slot", 2)  # two immediate jobs of one queue: the batched path
        schedule("expire_wave", 3, 1, at=later)
        db.session.commit()
    assert sorted(got, key=repr) == sorted(
        [
            ("jobs.filling.fill_slot", (1,), None),
            ("jobs.filling.fill_slot", (2,), None),
            ("jobs.filling.expire_wave", (3, 1), later),
        ],
        key=repr,
    )
    assert Redis.from_url(app.config["REDIS_URL"]).dbsize() == 0
