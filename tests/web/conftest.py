"""The web tests sign staff in and call the API like the other areas' tests."""

from __future__ import annotations

from tests.api.conftest import api, token  # noqa: F401 (fixtures)
from tests.staff.conftest import signed_in, staff  # noqa: F401 (fixtures)
