"""The staff sign-in fixtures, shared with the staff tests."""

from tests.staff.conftest import signed_in, staff

__all__ = ["signed_in", "staff"]
