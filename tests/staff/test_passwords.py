"""argon2id hashing, and upgrading old hashes when their owner signs in."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from portal.db import db
from portal.services.passwords import hash_password, needs_rehash, verify_password
from tests import factories as f
from tests.staff.conftest import PASSWORD, post_login

pytestmark = pytest.mark.usefixtures("app")

WEAK = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


def test_hash_is_argon2id_and_salted() -> None:
    first, second = hash_password("a long passphrase"), hash_password("a long passphrase")
    assert first.startswith("$argon2id$")
    assert first != second


def test_verify_accepts_the_password_and_nothing_else() -> None:
    stored = hash_password("a long passphrase")
    assert verify_password(stored, "a long passphrase")
    assert not verify_password(stored, "a long passphrasE")
    assert not verify_password(stored, "")


@pytest.mark.parametrize("stored", [None, "", "not-a-hash"])
def test_verify_without_a_usable_hash_is_false(stored: str | None) -> None:
    assert not verify_password(stored, "not-a-real-password")


def test_needs_rehash_only_for_weaker_parameters() -> None:
    assert not needs_rehash(hash_password("a long passphrase"))
    assert needs_rehash(WEAK.hash("a long passphrase"))


def test_sign_in_upgrades_an_outdated_hash(client) -> None:
    user = f.staff_user(password_hash=WEAK.hash(PASSWORD))
    db.session.commit()
    assert post_login(client, user.email, PASSWORD).status_code == 302
    db.session.refresh(user)
    assert not needs_rehash(user.password_hash)
    assert verify_password(user.password_hash, PASSWORD)
