"""``/staff/audit``: the audit trail, filtered and paged; admins export it as CSV.

Admins read every event; other staff read the events about patients and their bookings
(``audit_log.PATIENT_ENTITIES``). The CSV export is itself an audited action, committed
before the first byte is streamed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from flask import Response, render_template, request, stream_with_context
from flask.typing import ResponseReturnValue

from portal.clock import now_utc
from portal.models.enums import ActorType
from portal.services import audit_log
from portal.services.audit import Action, record
from portal.web.staff.actions import actor, me
from portal.web.staff.blueprint import admin_required, bp
from portal.web.transaction import commit_or_conflict

#: Entity types that have their own staff page: (endpoint, its id argument).
ENTITY_PAGES = {
    "patient": ("staff.patient", "patient_id"),
    "slot": ("staff.slot", "slot_id"),
    "patient_flag": ("staff.flags_review", "flag_id"),
    "outreach_task": ("staff.outreach_task", "task_id"),
    "closure": ("staff.closures_detail", "closure_id"),
}


@bp.get("/audit")
def audit() -> ResponseReturnValue:
    """Events newest first, filtered by entity, actor, action and local dates."""
    user = me()
    zone = audit_log.clinic_zone()
    wanted, problems = audit_log.parse_filter(request.args, zone)
    found = audit_log.page(wanted, is_admin=user.is_admin, after=request.args.get("after"))
    entities = {
        k: v
        for k, v in audit_log.ENTITY_LABELS.items()
        if user.is_admin or k in audit_log.PATIENT_ENTITIES
    }
    return render_template(
        "staff/audit.html",
        page=found,
        wanted=wanted,
        params=wanted.as_params(),
        problems=problems,
        zone=zone,
        entities=entities,
        actor_types=audit_log.ACTOR_LABELS,
        actions=sorted(Action, key=lambda a: a.value),
        changes=audit_log.changes,
        action_label=audit_log.action_label,
        entity_pages=ENTITY_PAGES,
        is_first=not request.args.get("after"),
        ActorType=ActorType,
    )


@bp.get("/audit.csv")
@admin_required
def audit_export() -> ResponseReturnValue:
    """Stream the filtered events as CSV; the export is recorded first."""
    user = me()
    zone = audit_log.clinic_zone()
    wanted, _problems = audit_log.parse_filter(request.args, zone)
    commit_or_conflict(
        lambda: record(actor(), Action.AUDIT_EXPORTED, user, after=wanted.as_params())
    )

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(audit_log.CSV_HEADER)
        for row in audit_log.export_rows(wanted, is_admin=True):
            writer.writerow(row)
            if buffer.tell() > 64_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    stamp = now_utc().strftime("%Y%m%d-%H%M%S")
    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )
