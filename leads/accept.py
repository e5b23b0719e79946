"""Storing an accepted push: one read, then one write that merges the lead and adds its delivery.

The ORM way (get-or-create the lead under a savepoint, save it, MAX(sequence), insert the
delivery, recompute the status) cost 13 statements and most of a push's CPU. Here:

1. `known` reads, in one statement, the site's id and the lead's current row, plus whether
   this push repeats a recent one (same body) or reuses an Idempotency-Key.
2. The caller merges the lead's new state in Python from that row (leads.services).
3. `write` stores it: on PostgreSQL one statement (a data-modifying CTE), atomic on its own, so
   no BEGIN or COMMIT round trips; on SQLite the same two statements in one transaction.

Nothing is locked between 1 and 3. The lead's `last_sequence` is the check: the write only
applies if it is still what step 1 read (every new delivery increments it), so a concurrent push
of the same lead makes the write miss, and the caller reads and merges again. A new lead is
inserted with ON CONFLICT DO NOTHING: a concurrent create of the same id makes it miss too.
After a few misses the caller reads under a row lock, which cannot miss.

A new delivery always enters as `pending`; the lead's summary status follows from that alone
(see `_STATUS_WITH_PENDING`), so no delivery needs reading to keep it right.
"""

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from grants.models import Site
from leads.models import CREATING_OPERATIONS, Delivery, Lead
from partner_portal.database import current, param, prepared_cursor

# A lead's summary with one more pending delivery (leads.models.lead_summary_from): a failure,
# a retry or a hold still outranks it; anything calmer becomes pending, with no HTTP status or
# error behind it. Evaluated on the row as the UPDATE finds it, so a worker's concurrent change
# of the status is never overwritten with a stale one.
_OUTRANKING = "('failed', 'retrying', 'held')"
_STATUS_WITH_PENDING = f"""
status = CASE WHEN status IN {_OUTRANKING} THEN status ELSE 'pending' END,
last_status_code = CASE WHEN status IN {_OUTRANKING} THEN last_status_code END,
last_error = CASE WHEN status IN {_OUTRANKING} THEN last_error ELSE '' END
"""


@dataclass(frozen=True)
class Known:
    """What the database holds about a push's site and lead (step 1)."""

    site_id: Optional[int]
    lead_pk: Optional[int]
    lead_site_id: Optional[int]
    data: dict[str, Any]
    last_sequence: int
    activity_count: int
    repeated_delivery_id: Optional[int]  # a delivery of the same request within the window
    keyed_delivery_id: Optional[int]  # the delivery that already used this Idempotency-Key


# What a push knows before reading anything: no site, no lead, no earlier push.
NOTHING_KNOWN = Known(
    site_id=None,
    lead_pk=None,
    lead_site_id=None,
    data={},
    last_sequence=0,
    activity_count=0,
    repeated_delivery_id=None,
    keyed_delivery_id=None,
)


@dataclass(frozen=True)
class NewDelivery:
    """The delivery row to add, with the lead's state after it."""

    operation: str
    payload: Any
    origin: str
    actor_id: Optional[int]
    api_key_id: Optional[int]
    request_digest: str
    idempotency_key: str
    router_destinations: str
    now: datetime
    public_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class LeadState:
    data: dict[str, Any]
    email: str
    name: str
    phone: str
    activity_count: int


def known(
    *,
    partner_id: int,
    site_uuid: uuid.UUID,
    lead_id: uuid.UUID,
    digest: str,
    repeat_since: datetime,
    api_key_id: Optional[int],
    idempotency_key: str,
    lock: bool = False,
) -> Known:
    """Step 1, one statement. With `lock` (inside a transaction) the lead's row is locked first."""
    db = current()
    lead_uuid = param(db, Lead, "lead_id", lead_id)
    if lock and db.vendor == "postgresql":
        with prepared_cursor(db) as cursor:
            # FOR UPDATE cannot take the nullable side of the outer join below; lock it alone.
            cursor.execute(
                "SELECT id FROM leads_lead WHERE partner_id = %s AND lead_id = %s FOR UPDATE", [partner_id, lead_uuid]
            )
    columns = [
        "s.id",
        "l.id",
        "l.site_id",
        "l.data",
        "l.last_sequence",
        "l.activity_count",
        # Scoped to the lead's own deliveries (its index); empty digests never match.
        "(SELECT r.id FROM leads_delivery r WHERE r.lead_id = l.id AND r.request_digest = %s"
        " AND r.request_digest <> '' AND r.created >= %s ORDER BY r.sequence DESC LIMIT 1)",
    ]
    params: list[Any] = [digest, param(db, Delivery, "created", repeat_since)]
    if idempotency_key:
        # The literal `<> ''` lets the database use the partial unique index on the key.
        columns.append(
            "(SELECT k.id FROM leads_delivery k WHERE k.api_key_id = %s AND k.idempotency_key = %s"
            " AND k.idempotency_key <> '')"
        )
        params += [api_key_id, idempotency_key]
    sql = (
        f"SELECT {', '.join(columns)} FROM (SELECT 1 AS one) AS x "  # noqa: S608 (constants only)
        "LEFT JOIN grants_site s ON s.partner_id = %s AND s.site_uuid = %s "
        "LEFT JOIN leads_lead l ON l.partner_id = %s AND l.lead_id = %s"
    )
    params += [partner_id, param(db, Site, "site_uuid", site_uuid), partner_id, lead_uuid]
    with prepared_cursor(db) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    site_id, lead_pk, lead_site_id, data, last_sequence, activity_count, repeated = row[:7]
    return Known(
        site_id=site_id,
        lead_pk=lead_pk,
        lead_site_id=lead_site_id,
        data=_json(data) if data is not None else {},
        last_sequence=last_sequence or 0,
        activity_count=activity_count or 0,
        repeated_delivery_id=repeated,
        keyed_delivery_id=row[7] if idempotency_key else None,
    )


def _json(value: Any) -> Any:
    # PostgreSQL's driver may hand JSON over decoded or as text, depending on its loaders.
    return json.loads(value) if isinstance(value, str) else value


# The lead's columns a push sets from its merged state, in `LeadState` order.
_STATE = ("data", "email", "name", "phone", "activity_count")
_STATE_PLACES = ", ".join(["%s"] * len(_STATE))
# Only constants of this module are formatted into the statements below (hence the noqa).
_LEAD_INSERT = (
    "INSERT INTO leads_lead (partner_id, site_id, lead_id, created_elsewhere, created, updated, status, "  # noqa: S608
    f"last_error, last_sequence, {', '.join(_STATE)}) "
    f"VALUES (%s, %s, %s, %s, %s, %s, 'pending', '', 1, {_STATE_PLACES}) "
    "ON CONFLICT (partner_id, lead_id) DO NOTHING RETURNING id, last_sequence"
)
# PostgreSQL, a create when nothing is known yet: the lead is inserted at the site found by its
# UUID, so a create of a new lead at a known site needs no read first (the common push). No row
# comes back when the site is unknown or the lead exists: then the push reads and merges.
_LEAD_INSERT_AT_SITE = (
    "INSERT INTO leads_lead (partner_id, site_id, lead_id, created_elsewhere, created, updated, status, "  # noqa: S608
    f"last_error, last_sequence, {', '.join(_STATE)}) "
    "SELECT %s::bigint, s.id, %s::uuid, false, %s::timestamptz, %s::timestamptz, 'pending', '', 1, "
    "%s::jsonb, %s::text, %s::text, %s::text, %s::integer "
    "FROM grants_site s WHERE s.partner_id = %s AND s.site_uuid = %s "
    "ON CONFLICT (partner_id, lead_id) DO NOTHING RETURNING id, last_sequence"
)
_LEAD_UPDATE = (
    f"UPDATE leads_lead SET {', '.join(f'{name} = %s' for name in _STATE)}, updated = %s, "  # noqa: S608
    f"last_sequence = last_sequence + 1, {_STATUS_WITH_PENDING} "
    "WHERE id = %s AND last_sequence = %s RETURNING id, last_sequence"
)
# The delivery's columns a push sets, with their PostgreSQL types: a parameter in a SELECT list
# (the one-statement form below) has no column to take its type from, so it is cast.
_DELIVERY_COLUMNS = {
    "public_id": "uuid",
    "operation": "text",
    "payload": "jsonb",
    "origin": "text",
    "actor_id": "integer",
    "api_key_id": "bigint",
    "request_digest": "text",
    "idempotency_key": "text",
    "router_destinations": "text",
    "next_attempt_at": "timestamptz",
    "created": "timestamptz",
    "updated": "timestamptz",
}
_DELIVERY_INTO = (
    f"INSERT INTO leads_delivery (lead_id, sequence, {', '.join(_DELIVERY_COLUMNS)}, status, retry_trigger, "
    "attempt_count, attempts_before_retry, last_error)"
)
_DELIVERY_FIXED = "'pending', '', 0, 0, ''"
_DELIVERY_PLACES = ", ".join(["%s"] * len(_DELIVERY_COLUMNS)) + f", {_DELIVERY_FIXED}"
_DELIVERY_TYPED_PLACES = ", ".join(f"%s::{kind}" for kind in _DELIVERY_COLUMNS.values()) + f", {_DELIVERY_FIXED}"
# PostgreSQL: the lead's statement feeds the delivery's; one statement, atomic by itself, so
# autocommit spends no round trips on BEGIN and COMMIT.
_ONE_STATEMENT = {
    lead_sql: (
        f"WITH lead AS ({lead_sql}) {_DELIVERY_INTO} "  # noqa: S608
        f"SELECT lead.id, lead.last_sequence, {_DELIVERY_TYPED_PLACES} FROM lead RETURNING id, lead_id, sequence"
    )
    for lead_sql in (_LEAD_INSERT, _LEAD_UPDATE, _LEAD_INSERT_AT_SITE)
}
# SQLite: the delivery's statement after the lead's, in one transaction.
_DELIVERY_INSERT = f"{_DELIVERY_INTO} VALUES (%s, %s, {_DELIVERY_PLACES}) RETURNING id, lead_id, sequence"


def creates_without_reading() -> bool:
    """Whether `create` can store a new lead without the read (one statement on PostgreSQL)."""
    return current().vendor == "postgresql"


def create(
    *, partner_id: int, site_uuid: uuid.UUID, lead_id: uuid.UUID, lead: LeadState, delivery: NewDelivery
) -> Optional[tuple[int, int, int]]:
    """A new lead at a known site and its first delivery, in one statement (PostgreSQL only).
    Returns (delivery id, lead pk, sequence), or None when the site is unknown or the lead
    exists: nothing was written, and the push goes the read-then-write way."""
    db = current()
    now = param(db, Lead, "created", delivery.now)
    lead_params = [
        partner_id,
        param(db, Lead, "lead_id", lead_id),
        now,
        now,
        *_state_params(db, lead),
        partner_id,
        param(db, Site, "site_uuid", site_uuid),
    ]
    return _execute_one(db, _LEAD_INSERT_AT_SITE, lead_params, _delivery_params(db, delivery, now))


def write(
    *, partner_id: int, site_id: int, lead_id: uuid.UUID, known: Known, lead: LeadState, delivery: NewDelivery
) -> Optional[tuple[int, int, int]]:
    """Step 3: store the lead's new state and the delivery. Returns (delivery id, lead pk,
    sequence), or None when the lead changed since `known` was read (read and merge again)."""
    db = current()
    now = param(db, Lead, "created", delivery.now)
    state = _state_params(db, lead)
    if known.lead_pk is None:
        lead_sql = _LEAD_INSERT
        creates_elsewhere = delivery.operation not in CREATING_OPERATIONS
        lead_params = [partner_id, site_id, param(db, Lead, "lead_id", lead_id), creates_elsewhere, now, now, *state]
    else:
        lead_sql = _LEAD_UPDATE
        lead_params = [*state, now, known.lead_pk, known.last_sequence]
    values = _delivery_params(db, delivery, now)
    if db.vendor == "postgresql":
        return _execute_one(db, lead_sql, lead_params, values)
    with transaction.atomic(), db.cursor() as cursor:
        cursor.execute(lead_sql, lead_params)
        written = cursor.fetchone()
        if written is None:
            return None
        cursor.execute(_DELIVERY_INSERT, [*written, *values])
        row = cursor.fetchone()
        return (row[0], row[1], row[2])


def _execute_one(
    db: BaseDatabaseWrapper, lead_sql: str, lead_params: list[Any], delivery_params: list[Any]
) -> Optional[tuple[int, int, int]]:
    with prepared_cursor(db) as cursor:
        cursor.execute(_ONE_STATEMENT[lead_sql], [*lead_params, *delivery_params])
        row = cursor.fetchone()
    return (row[0], row[1], row[2]) if row else None


def _state_params(db: BaseDatabaseWrapper, lead: LeadState) -> list[Any]:
    values = (lead.data, lead.email, lead.name, lead.phone, lead.activity_count)
    return [param(db, Lead, name, value) for name, value in zip(_STATE, values, strict=True)]


def _delivery_params(db: BaseDatabaseWrapper, delivery: NewDelivery, now: Any) -> list[Any]:
    return [
        param(db, Delivery, "public_id", delivery.public_id),
        delivery.operation,
        param(db, Delivery, "payload", delivery.payload),
        delivery.origin,
        delivery.actor_id,
        delivery.api_key_id,
        delivery.request_digest,
        delivery.idempotency_key,
        delivery.router_destinations,
        now,
        now,
        now,
    ]
