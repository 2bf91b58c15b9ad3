"""The staff portal: every page under ``/staff/`` needs a signed-in staff user.

The blueprint and its access rules are in ``blueprint``; the view modules register
their pages on it when imported here.
"""

from portal.web.staff import (
    acceptance,
    analytics,
    appointments,
    audit,
    auth,
    candidates,
    catalogue,
    closures,
    day,
    flags,
    home,
    outbox,
    outreach,
    patients,
    settings,
    staff_users,
    waitlist,
)
from portal.web.staff.blueprint import PUBLIC_ENDPOINTS, admin_required, bp

__all__ = [
    "PUBLIC_ENDPOINTS",
    "acceptance",
    "admin_required",
    "analytics",
    "appointments",
    "audit",
    "auth",
    "bp",
    "candidates",
    "catalogue",
    "closures",
    "day",
    "flags",
    "home",
    "outbox",
    "outreach",
    "patients",
    "settings",
    "staff_users",
    "waitlist",
]
