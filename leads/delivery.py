"""The delivery state machine: every change of a Delivery's status happens here.

    from                  event                                        to
    pending, retrying     claimed by a pump (due, head of its lead)    claimed
    claimed               its lease ran out (a worker died)            claimed again, by another
                          pump; the unfinished attempt is marked interrupted
    pending, retrying     claimed, but the site is not granted         held
    pending, retrying     claimed, but the lead's create has not       waiting
                          been delivered (updates and activities)
    claimed               RG answered 2xx                              delivered
    claimed               400/401/403/404/422                          failed (a human decides)
    claimed               5xx, 429, timeout, no connection             retrying (next_attempt_at),
                                                                       or dead once out of budget
    waiting               a delivery of the same lead finished         pending
    held                  the site was granted                         pending
    held                  held longer than DELIVERY_HELD_MAX_AGE_HOURS failed
    failed, dead,         a retry (delivery_retry: staff through       pending, with a fresh budget
    retrying, held        leads.staff_services, or bulk retry)
    pending, waiting,     staff cancel (delivery_cancel, through       cancelled
    held, retrying        leads.staff_services)
    held, and those       staff cancel the site's held ones            cancelled
    waiting behind them   (delivery_held_cancel, leads.bulk)

Claims are made in batches (leads.engine runs them): one statement picks due deliveries that
are the head of their lead's queue (no earlier delivery of the lead is pending, held, claimed
or retrying), so a lead's deliveries go out one at a time and in order; on PostgreSQL the pick
is `FOR UPDATE SKIP LOCKED`, so pumps in many processes never wait for each other, and on SQLite
the IMMEDIATE transaction makes the same statement exclusive. A claim is a lease: a killed
worker's deliveries are claimed again once it runs out, and only those it had in flight can be
sent twice (RG merges by lead id). Every attempt's row is written in the claim's transaction,
before its call; outcomes are recorded a batch at a time in a handful of statements.
"""

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from grants.models import Site
from grants.services import site_mark_doubtful
from leads import batch_update, circuit, metrics, queue, realgeeks, retry, rollup
from leads.models import (
    CREATING_OPERATIONS,
    Delivery,
    DeliveryAttempt,
    DeliveryFacts,
    DeliveryQuerySet,
    LeadSummary,
    lead_summary_from,
)

logger = logging.getLogger(__name__)

WAITING_FOR_CREATE = "Waiting for the lead's create to be delivered."
INTERRUPTED = "The worker stopped before this attempt finished; the delivery was handed to another."

_BLOCKING = ", ".join(f"'{status}'" for status in Delivery.BLOCKING_STATUSES)
_DUE_STATUSES = ", ".join(f"'{status}'" for status in Delivery.DUE_STATUSES)
_CREATING = ", ".join(f"'{operation}'" for operation in CREATING_OPERATIONS)
# The columns a claim needs to send without another query. `needs_create`: an update or
# activities for a lead whose create has not been delivered (and did not reach RG elsewhere).
# Only constants of this module are formatted in (never input), hence the noqa.
_CANDIDATES = f"""
SELECT d.id, d.status, d.lead_id, d.operation, d.payload, d.attempt_count, d.attempts_before_retry,
       d.retry_requested_by_id, d.actor_id, d.retry_trigger, d.router_destinations,
       l.lead_id, l.partner_id, l.site_id, s.site_uuid, s.status, s.circuit_failures,
       CASE WHEN d.operation IN ({_CREATING}) OR l.created_elsewhere THEN 0
            WHEN EXISTS (SELECT 1 FROM leads_delivery c WHERE c.lead_id = d.lead_id
                         AND c.operation IN ({_CREATING}) AND c.status = 'delivered') THEN 0
            ELSE 1 END
FROM leads_delivery d
JOIN leads_lead l ON l.id = d.lead_id
JOIN grants_site s ON s.id = l.site_id
WHERE {{due}}
  AND ({{circuit}})
  AND NOT EXISTS (SELECT 1 FROM leads_delivery e WHERE e.lead_id = d.lead_id
                  AND e.sequence < d.sequence AND e.status IN ({_BLOCKING}))
ORDER BY {{order}}
LIMIT %s
{{lock}}
"""  # noqa: S608
# What makes a delivery claimable, in SQL; `{d}` is the table's alias and dot, or nothing.
# `_DUE` is DeliveryQuerySet.due written out (the claim's statements are raw SQL for speed):
# keep the two together. `_still_due` is the whole condition for the ORM.
_DUE = f"{{d}}status IN ({_DUE_STATUSES}) AND {{d}}next_attempt_at <= %s"
_LEASE_RAN_OUT = "{d}status = 'claimed' AND {d}claimed_until < %s"
_IN_FLIGHT_BY_PARTNER = """
SELECT l.partner_id, COUNT(*) FROM leads_delivery d JOIN leads_lead l ON l.id = d.lead_id
WHERE d.status = 'claimed' AND d.claimed_until >= %s GROUP BY l.partner_id
"""


@dataclass(frozen=True)
class Claimed:
    """A delivery this pump holds, with its attempt row already written and its call prepared."""

    delivery_id: int
    lead_pk: int
    partner_id: int
    site_id: int
    site_failures: int
    attempt_id: int
    attempt_number: int
    budget_used: int  # attempts since a person last retried it, this one included
    call: realgeeks.Call
    attempt_started: datetime  # the attempt row's `started`: the hour the rollup counts it in
    lead_id: Optional[uuid.UUID] = None  # the lead's public id, for the log lines


@dataclass(frozen=True)
class _Candidate:
    delivery_id: int
    old_status: str
    lead_pk: int
    operation: str
    payload: str
    attempt_count: int
    attempts_before_retry: int
    retry_requested_by_id: Optional[int]
    actor_id: Optional[int]
    retry_trigger: str
    router_destinations: str
    lead_id: uuid.UUID
    partner_id: int
    site_id: int
    site_uuid: uuid.UUID
    site_status: str
    site_failures: int
    needs_create: bool

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> "_Candidate":
        (pk, status, lead_pk, operation, payload, attempts, before_retry, requested_by, actor, trigger) = row[:10]
        destinations = row[10]
        (lead_id, partner_id, site_id, site_uuid, site_status, site_failures, needs_create) = row[11:]
        return cls(
            delivery_id=pk,
            old_status=status,
            lead_pk=lead_pk,
            operation=operation,
            # The stored JSON is sent as it is: no parse and re-serialise per call.
            payload=payload if isinstance(payload, str) else json.dumps(payload),
            attempt_count=attempts,
            attempts_before_retry=before_retry,
            retry_requested_by_id=requested_by,
            actor_id=actor,
            retry_trigger=trigger,
            router_destinations=destinations,
            lead_id=uuid.UUID(str(lead_id)),
            partner_id=partner_id,
            site_id=site_id,
            site_uuid=uuid.UUID(str(site_uuid)),
            site_status=site_status,
            site_failures=site_failures,
            needs_create=bool(needs_create),
        )

    def trigger(self) -> str:
        if self.retry_trigger:
            return self.retry_trigger
        return DeliveryAttempt.Trigger.AUTOMATIC if self.attempt_count == 0 else DeliveryAttempt.Trigger.SWEEPER


CredentialsFor = Callable[[int], realgeeks.Credentials]
AllowanceFor = Callable[[int], int]


def deliveries_claim(
    *,
    slots: int,
    token: uuid.UUID,
    credentials_for: CredentialsFor,
    allowance_for: Optional[AllowanceFor] = None,
    probe_sites: Iterable[int] = (),
    lease_expired_too: bool = False,
) -> list[Claimed]:
    """Claim up to `slots` due deliveries for the pump whose claims `token` names.

    Per partner, at most DELIVERY_PARTNER_MAX_IN_FLIGHT are in flight across all pumps, and at
    most `allowance_for(partner_id)` more from this call (the pump's rate limit). A site whose
    circuit is open is skipped, except those in `probe_sites`, which get one delivery each.
    Deliveries that may not go now are parked as held or waiting instead.
    """
    if slots <= 0:
        return []
    now = timezone.now()
    probe_sites = set(probe_sites)
    # SQLite has one writer at a time: read the candidates before taking the write lock (WAL
    # readers never wait), and let the claim's UPDATE re-check each row, taking only those still
    # due. PostgreSQL locks them as it reads them (SKIP LOCKED), in the transaction.
    locking = connection.features.has_select_for_update_skip_locked
    read_first = None if locking else _candidates(now, slots, probe_sites, lease_expired_too)
    if read_first == []:
        return []
    with transaction.atomic():
        candidates = read_first if read_first is not None else _candidates(now, slots, probe_sites, lease_expired_too)
        if not candidates:
            return []
        chosen, held, waiting = _choose(candidates, slots, now, probe_sites, allowance_for)
        held, waiting = _park(held, waiting, now)
        claimed_ids = set(_claim_mark([c.delivery_id for c in chosen], token, now))
        chosen = [c for c in chosen if c.delivery_id in claimed_ids]
        _interrupted_mark([c for c in (*chosen, *held, *waiting) if c.old_status == Delivery.Status.CLAIMED])
        if not chosen:
            return []
        return _attempts_start(chosen, now, credentials_for)


def _still_due(now: datetime) -> DeliveryQuerySet:
    """Claimable: due, or a lease that ran out (`_DUE` or `_LEASE_RAN_OUT` for the ORM). The
    sweeper asks for a pump when any row matches; a claim's parking re-checks it per row."""
    return Delivery.objects.due(now) | Delivery.objects.filter(status=Delivery.Status.CLAIMED, claimed_until__lt=now)


def _claim_mark(ids: list[int], token: uuid.UUID, now: datetime) -> list[int]:
    """Mark the deliveries claimed by `token`, those still due; the ids it marked."""
    if not ids:
        return []
    stamp = connection.ops.adapt_datetimefield_value
    token_value = Delivery._meta.get_field("claim_token").get_db_prep_value(token, connection)
    where, params = batch_update.in_list("id", ids)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE leads_delivery SET status = %s, claim_token = %s, claimed_until = %s,"  # noqa: S608
            " attempt_count = attempt_count + 1, last_attempt_at = %s, retry_requested_by_id = NULL,"
            f" retry_trigger = '', updated = %s WHERE {where}"
            f" AND (({_DUE.format(d='')}) OR ({_LEASE_RAN_OUT.format(d='')})) RETURNING id",
            [
                *(Delivery.Status.CLAIMED, token_value, stamp(retry.lease_until(now)), stamp(now), stamp(now)),
                *params,
                *(stamp(now), stamp(now)),
            ],
        )
        return [row[0] for row in cursor.fetchall()]


def _candidates(now: datetime, slots: int, probe_sites: set[int], lease_expired_too: bool) -> list[_Candidate]:
    adapted_now = connection.ops.adapt_datetimefield_value(now)
    lock = "FOR UPDATE OF d SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    circuit_closed = "s.circuit_opened_at IS NULL"
    if probe_sites:
        circuit_closed += f" OR s.id IN ({', '.join(str(int(site_id)) for site_id in probe_sites)})"
    # A little more than the slots: the partner cap or a probe may leave some out.
    limit = slots + 16
    queries = [(_DUE, "d.next_attempt_at")]
    if lease_expired_too:
        queries.append((_LEASE_RAN_OUT, "d.claimed_until"))
    rows: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        for due, order in queries:
            sql = _CANDIDATES.format(due=due.format(d="d."), circuit=circuit_closed, order=order, lock=lock)
            cursor.execute(sql, [adapted_now, limit])
            rows.extend(cursor.fetchall())
    return [_Candidate.from_row(row) for row in rows]


def _choose(
    candidates: list[_Candidate],
    slots: int,
    now: datetime,
    probe_sites: set[int],
    allowance_for: Optional[AllowanceFor],
) -> tuple[list[_Candidate], list[_Candidate], list[_Candidate]]:
    """Split candidates into those to send now, to hold (site not granted) and to make wait."""
    cap = settings.DELIVERY_PARTNER_MAX_IN_FLIGHT
    in_flight = _in_flight_by_partner(now)
    chosen: list[_Candidate] = []
    held: list[_Candidate] = []
    waiting: list[_Candidate] = []
    taken_for: dict[int, int] = {}
    probed: set[int] = set()
    for candidate in candidates:
        if candidate.site_status not in (Site.Status.ACTIVE, Site.Status.DOUBTFUL):
            held.append(candidate)
            continue
        if candidate.needs_create:
            waiting.append(candidate)
            continue
        if len(chosen) >= slots:
            continue
        partner = candidate.partner_id
        taken = taken_for.get(partner, 0)
        if in_flight.get(partner, 0) + taken >= cap:
            continue
        if allowance_for is not None and taken >= allowance_for(partner):
            continue
        if candidate.site_id in probe_sites:
            if candidate.site_id in probed:
                continue
            probed.add(candidate.site_id)
        taken_for[partner] = taken + 1
        chosen.append(candidate)
    return chosen, held, waiting


def _in_flight_by_partner(now: datetime) -> dict[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(_IN_FLIGHT_BY_PARTNER, [connection.ops.adapt_datetimefield_value(now)])
        return {partner: count for partner, count in cursor.fetchall()}


def _park(
    held: list[_Candidate], waiting: list[_Candidate], now: datetime
) -> tuple[list[_Candidate], list[_Candidate]]:
    """Hold or make wait what may not go now (those still due); what was parked."""
    if not held and not waiting:
        return [], []
    leads = leads_lock({c.lead_pk for c in (*held, *waiting)})
    parked = {"claimed_until": None, "claim_token": None, "next_attempt_at": None, "updated": now}
    due = _still_due(now)
    done: set[int] = set()
    for site_uuid in {c.site_uuid for c in held}:
        rows = due.filter(pk__in=[c.delivery_id for c in held if c.site_uuid == site_uuid])
        done |= set(rows.values_list("pk", flat=True))
        reason = f"Site {site_uuid} is not granted to this partner yet."
        rows.update(status=Delivery.Status.HELD, last_error=reason, **parked)
    if waiting:
        rows = due.filter(pk__in=[c.delivery_id for c in waiting])
        done |= set(rows.values_list("pk", flat=True))
        rows.update(status=Delivery.Status.WAITING, last_error=WAITING_FOR_CREATE, **parked)
    leads_summarise(leads)
    return [c for c in held if c.delivery_id in done], [c for c in waiting if c.delivery_id in done]


def _interrupted_mark(candidates: list[_Candidate]) -> None:
    """Attempts left in progress by a worker that died: say so before a new attempt starts, and
    count them in the rollup (one UPDATE ... RETURNING, one upsert)."""
    if not candidates:
        return
    partner_of = {c.delivery_id: c.partner_id for c in candidates}
    where, params = batch_update.in_list("delivery_id", list(partner_of))
    interrupted = DeliveryAttempt.Outcome.INTERRUPTED
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE leads_deliveryattempt SET outcome = %s, error = %s WHERE {where} AND outcome = %s"  # noqa: S608
            " RETURNING delivery_id, started",
            [interrupted, INTERRUPTED, *params, DeliveryAttempt.Outcome.STARTED],
        )
        reaped = cursor.fetchall()
    rollup.attempts_count(
        rollup.Finished(partner_of[pk], rollup.datetime_from_row(started), interrupted, None, INTERRUPTED, None)
        for pk, started in reaped
    )


def _attempts_start(chosen: list[_Candidate], now: datetime, credentials_for: CredentialsFor) -> list[Claimed]:
    """The attempt rows, written before the calls so a crash mid-call still leaves a trace."""
    prepared = []
    stamp = connection.ops.adapt_datetimefield_value(now)
    public_id = DeliveryAttempt._meta.get_field("public_id")
    # The whole body is the delivery's payload; each attempt keeps a bounded copy, like its answer.
    body_max = settings.ATTEMPT_BODY_MAX_CHARS
    rows = []
    for c in chosen:
        creds = credentials_for(c.partner_id)
        ep = realgeeks.endpoint(c.operation, base_url=creds.base_url, site_uuid=c.site_uuid, lead_id=c.lead_id)
        trigger = c.trigger()
        manual = trigger in (DeliveryAttempt.Trigger.MANUAL, DeliveryAttempt.Trigger.BULK)
        actor = (c.retry_requested_by_id or c.actor_id) if manual else None
        headers = realgeeks.delivery_headers(router_destinations=c.router_destinations)
        prepared.append((c, realgeeks.Call(creds, ep, c.payload.encode(), headers)))
        rows.append(
            (
                public_id.get_db_prep_value(uuid.uuid4(), connection),
                *(c.delivery_id, c.attempt_count + 1, trigger, actor, stamp, ep.method, ep.url, c.payload[:body_max]),
                *("", "", DeliveryAttempt.Outcome.STARTED),
            )
        )
    attempt_ids = _attempts_insert(rows)
    return [
        Claimed(
            delivery_id=c.delivery_id,
            lead_pk=c.lead_pk,
            partner_id=c.partner_id,
            site_id=c.site_id,
            site_failures=c.site_failures,
            attempt_id=attempt_id,
            attempt_number=c.attempt_count + 1,
            budget_used=c.attempt_count + 1 - c.attempts_before_retry,
            call=call,
            attempt_started=now,
            lead_id=c.lead_id,
        )
        for (c, call), attempt_id in zip(prepared, attempt_ids, strict=True)
    ]


_ATTEMPT_COLUMNS = (
    batch_update.Column("public_id", "uuid"),
    batch_update.Column("delivery_id", "bigint"),
    batch_update.Column("number", "integer"),
    batch_update.Column("trigger", "text"),
    batch_update.Column("actor_id", "integer"),
    batch_update.Column("started", "timestamptz"),
    batch_update.Column("request_method", "text"),
    batch_update.Column("request_url", "text"),
    batch_update.Column("request_body", "text"),
    batch_update.Column("response_body", "text"),
    batch_update.Column("error", "text"),
    batch_update.Column("outcome", "text"),
)


def _attempts_insert(rows: list[tuple[Any, ...]]) -> list[int]:
    # One statement for the batch (bulk_create's model objects cost more CPU than the INSERT).
    return batch_update.rows_insert("leads_deliveryattempt", _ATTEMPT_COLUMNS, rows)


def deliveries_record(finished: list[tuple[Claimed, realgeeks.Outcome]], *, token: uuid.UUID) -> dict[int, str]:
    """Record a batch of finished calls: attempts, deliveries, their leads and circuits.

    Returns each recorded delivery's new status. A delivery whose claim was lost meanwhile (its
    lease ran out mid-call and another pump took it) is left to that pump.
    """
    if not finished:
        return {}
    now = timezone.now()
    verdicts = {claimed.delivery_id: _verdict(claimed, outcome, now) for claimed, outcome in finished}
    with transaction.atomic():
        leads = leads_lock({claimed.lead_pk for claimed, _ in finished})
        owned = set(_deliveries_finish(finished, verdicts, token=token, now=now))
        taken_back = _interrupted_meanwhile([c for c, _ in finished if c.delivery_id not in owned])
        _attempts_finish(finished, verdicts)
        mine = [(claimed, outcome) for claimed, outcome in finished if claimed.delivery_id in owned]
        if len(mine) < len(finished):
            lost = [c.delivery_id for c, _ in finished if c.delivery_id not in owned]
            logger.warning(
                "%s deliveries: claim lost before the outcome was recorded", len(lost), extra={"delivery_ids": lost}
            )
        finished_leads = {c.lead_pk for c, _ in mine if verdicts[c.delivery_id].status in Delivery.TERMINAL_STATUSES}
        leads_summarise({pk: leads[pk] for pk in {c.lead_pk for c, _ in mine}}, release_waiting_of=finished_leads)
        # Last before the commit: every pump's batches add to the same few rows of the current
        # hour, and their row locks are held from here to the commit.
        rollup.attempts_count([*_rollup_finished(finished, verdicts), *taken_back])
    circuit.circuits_record(
        (circuit.SiteOutcome(c.site_id, _trips_circuit(o), o.error_message) for c, o in mine),
        failures_before={c.site_id: c.site_failures for c, _ in mine},
        # The time it opens, not the batch's: claims made while the batch was being recorded
        # went out before the circuit was open, and the site's page should say so.
        now=timezone.now(),
    )
    for site_id in {c.site_id for c, _ in mine if verdicts[c.delivery_id].site_doubtful}:
        site_mark_doubtful(site=Site(pk=site_id), note="Real Geeks answered 401 to a delivery for this site.")
    for claimed, outcome in mine:
        status = verdicts[claimed.delivery_id].status
        logger.info(
            "delivery %s attempt %s: %s (lead %s, partner %s)",
            claimed.delivery_id,
            claimed.attempt_number,
            status,
            claimed.lead_id,
            claimed.partner_id,
            extra={
                "delivery_id": claimed.delivery_id,
                "lead_id": str(claimed.lead_id),
                "partner_id": claimed.partner_id,
                "attempt": claimed.attempt_number,
                "delivery_status": status,
                "http_status": outcome.status,
                "duration_ms": outcome.duration_ms,
            },
        )
    metrics.attempts_count((c.partner_id, verdicts[c.delivery_id].outcome, o.duration_ms) for c, o in mine)
    return {c.delivery_id: verdicts[c.delivery_id].status for c, _ in mine}


def _rollup_finished(
    finished: list[tuple[Claimed, realgeeks.Outcome]], verdicts: dict[int, retry.Verdict]
) -> Iterable[rollup.Finished]:
    """The batch's attempts as the rollup counts them (their rows were just given these values)."""
    for claimed, outcome in finished:
        yield rollup.Finished(
            partner_id=claimed.partner_id,
            started=claimed.attempt_started,
            outcome=verdicts[claimed.delivery_id].outcome,
            status=outcome.status,
            error=outcome.error_message[:500],
            duration_ms=outcome.duration_ms,
        )


def _interrupted_meanwhile(lost: list[Claimed]) -> list[rollup.Finished]:
    """Lost claims' attempts that the pump which took their deliveries over marked interrupted
    (and counted so): each gets its real outcome now, so the rollup takes the interrupted count
    back. Rare (a lease ran out mid-call), so the extra query is only made then."""
    if not lost:
        return []
    by_attempt = {c.attempt_id: c for c in lost}
    where, params = batch_update.in_list("id", list(by_attempt))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM leads_deliveryattempt WHERE {where} AND outcome = %s",  # noqa: S608
            [*params, DeliveryAttempt.Outcome.INTERRUPTED],
        )
        interrupted = [by_attempt[row[0]] for row in cursor.fetchall()]
    return [
        rollup.Finished(
            c.partner_id, c.attempt_started, DeliveryAttempt.Outcome.INTERRUPTED, None, INTERRUPTED, None, sign=-1
        )
        for c in interrupted
    ]


def _verdict(claimed: Claimed, outcome: realgeeks.Outcome, now: datetime) -> retry.Verdict:
    if outcome.error is None:
        return retry.DELIVERED
    return retry.verdict_for_error(outcome.error, attempt_count=claimed.budget_used, now=now)


def _trips_circuit(outcome: realgeeks.Outcome) -> bool:
    """5xx answers, timeouts and failed connections count toward opening the circuit; a call
    refused before sending (a permanent error without a status: the host is not allowed) says
    nothing about the site."""
    error = outcome.error
    if error is None:
        return False
    if error.status is None:
        return not error.permanent
    return error.status >= 500


_ATTEMPT_RESULT = (
    batch_update.Column("duration_ms", "integer"),
    batch_update.Column("response_status", "integer"),
    batch_update.Column("response_body", "text"),
    batch_update.Column("response_headers", "jsonb"),
    batch_update.Column("error", "text"),
    batch_update.Column("outcome", "text"),
    batch_update.Column("next_attempt_at", "timestamptz"),
)
_DELIVERY_RESULT = (
    batch_update.Column("status", "text"),
    batch_update.Column("next_attempt_at", "timestamptz"),
    batch_update.Column("last_status_code", "integer"),
    batch_update.Column("last_error", "text"),
    batch_update.Column("delivered_at", "timestamptz"),
)
_ID = batch_update.Column("id", "bigint")


def _deliveries_finish(
    finished: list[tuple[Claimed, realgeeks.Outcome]],
    verdicts: dict[int, retry.Verdict],
    *,
    token: uuid.UUID,
    now: datetime,
) -> list[int]:
    """Each delivery's outcome, where this pump's claim still holds; the ids it held for."""
    stamp = connection.ops.adapt_datetimefield_value
    rows = []
    for claimed, outcome in finished:
        verdict = verdicts[claimed.delivery_id]
        delivered_at = now if verdict.status == Delivery.Status.DELIVERED else None
        rows.append(
            (
                *(claimed.delivery_id, verdict.status, stamp(verdict.next_attempt_at)),
                *(outcome.status, outcome.error_message[:500], stamp(delivered_at)),
            )
        )
    token_value = Delivery._meta.get_field("claim_token").get_db_prep_value(token, connection)
    return batch_update.rows_update(
        "leads_delivery",
        _ID,
        _DELIVERY_RESULT,
        rows,
        also_set="claimed_until = NULL, claim_token = NULL, updated = %s",
        also_where="leads_delivery.claim_token = %s",
        params=(stamp(now), token_value),
    )


def _attempts_finish(finished: list[tuple[Claimed, realgeeks.Outcome]], verdicts: dict[int, retry.Verdict]) -> None:
    stamp = connection.ops.adapt_datetimefield_value
    # Already redacted and bounded by leads.realgeeks (leads.headers); {} when no answer came.
    headers = DeliveryAttempt._meta.get_field("response_headers")
    rows = []
    for claimed, outcome in finished:
        verdict = verdicts[claimed.delivery_id]
        rows.append(
            (
                claimed.attempt_id,
                outcome.duration_ms,
                outcome.status,
                (outcome.body or "")[: settings.ATTEMPT_BODY_MAX_CHARS],
                headers.get_db_prep_value(outcome.headers, connection),
                outcome.error_message[:500],
                verdict.outcome,
                stamp(verdict.next_attempt_at),
            )
        )
    batch_update.rows_update("leads_deliveryattempt", _ID, _ATTEMPT_RESULT, rows)


_LEAD_SUMMARY = (
    batch_update.Column("status", "text"),
    batch_update.Column("last_status_code", "integer"),
    batch_update.Column("last_error", "text"),
)


def leads_lock(lead_pks: set[int]) -> dict[int, LeadSummary]:
    """Lock the leads (in id order, so two batches never deadlock) and read their summaries."""
    where, params = batch_update.in_list("id", sorted(lead_pks))
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, status, last_status_code, last_error FROM leads_lead WHERE {where} ORDER BY id{lock}",  # noqa: S608
            params,
        )
        return {pk: LeadSummary(status, code, error) for pk, status, code, error in cursor.fetchall()}


def leads_summarise(leads: dict[int, LeadSummary], *, release_waiting_of: Iterable[int] = ()) -> None:
    """Recompute locked leads' summaries (from `leads_lock`) from their deliveries and write
    those that changed: two statements for any number of leads.

    Deliveries waiting behind one of `release_waiting_of`'s leads are made due first (each
    re-checks its order when claimed).
    """
    if not leads:
        return
    now = timezone.now()
    release_of = set(release_waiting_of)
    where, params = batch_update.in_list("lead_id", list(leads))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, lead_id, operation, sequence, status, last_status_code, last_error"  # noqa: S608
            f" FROM leads_delivery WHERE {where}",
            params,
        )
        rows = cursor.fetchall()
    released = {row[0] for row in rows if row[1] in release_of and row[4] == Delivery.Status.WAITING}
    if released:
        Delivery.objects.filter(pk__in=released).update(
            status=Delivery.Status.PENDING, next_attempt_at=now, updated=now
        )
        queue.pump_hint_on_commit()
    by_lead: dict[int, list[DeliveryFacts]] = {}
    for pk, lead_pk, operation, sequence, status, code, error in rows:
        status = Delivery.Status.PENDING if pk in released else status
        by_lead.setdefault(lead_pk, []).append(DeliveryFacts(operation, sequence, status, code, error))
    changed: list[tuple[int, str, Optional[int], str]] = []
    for pk, current in leads.items():
        status, code, error = lead_summary_from(by_lead.get(pk, []))
        if (status, code, error[:500]) != current:
            changed.append((pk, status, code, error[:500]))
    batch_update.rows_update("leads_lead", _ID, _LEAD_SUMMARY, changed)


@transaction.atomic
def deliveries_release_held(*, site: Site) -> int:
    """The site may be sent to now: its held deliveries become due."""
    if not Site.objects.get(pk=site.pk).is_sendable:
        return 0
    now = timezone.now()
    rows = list(
        Delivery.objects.filter(status=Delivery.Status.HELD, lead__site=site).values_list("pk", "lead_id")[
            : settings.DELIVERY_SWEEP_BATCH
        ]
    )
    if not rows:
        return 0
    leads = leads_lock({lead_pk for _, lead_pk in rows})
    released = Delivery.objects.filter(pk__in=[pk for pk, _ in rows], status=Delivery.Status.HELD).update(
        status=Delivery.Status.PENDING, next_attempt_at=now, last_error="", updated=now
    )
    leads_summarise(leads)
    queue.pump_hint_on_commit()
    return released


@dataclass(frozen=True)
class SweepResult:
    due: bool  # deliveries were due (or a dead worker's lease had run out): a pump was asked for
    released: int
    expired: int


def deliveries_sweep() -> SweepResult:
    """The safety net behind the pumps: release held deliveries whose site is now granted, fail
    those held too long, and ask for a pump if anything is due (a lost hint, a broker outage,
    a scheduled retry, a killed worker's lease)."""
    now = timezone.now()
    expired = _held_expire(now)
    released = 0
    granted = Site.objects.sendable().filter(leads__deliveries__status=Delivery.Status.HELD).distinct()
    for site in granted[: settings.DELIVERY_SWEEP_BATCH]:
        released += deliveries_release_held(site=site)
    due = _still_due(now).exists()
    if due:
        queue.pump_hint(force=True)
    if released or expired:
        logger.info("sweep: released %s, expired %s", released, expired)
    return SweepResult(due=due, released=released, expired=expired)


def _held_expire(now: datetime) -> int:
    """Fail deliveries held longer than DELIVERY_HELD_MAX_AGE_HOURS, saying why."""
    rows = list(
        Delivery.objects.filter(status=Delivery.Status.HELD, created__lt=retry.held_too_long_before(now)).values_list(
            "pk", "lead_id"
        )[: settings.DELIVERY_SWEEP_BATCH]
    )
    if not rows:
        return 0
    with transaction.atomic():
        leads = leads_lock({lead_pk for _, lead_pk in rows})
        expired = Delivery.objects.filter(pk__in=[pk for pk, _ in rows], status=Delivery.Status.HELD).update(
            status=Delivery.Status.FAILED,
            last_error=retry.held_too_long_reason(),
            next_attempt_at=None,
            updated=now,
        )
        leads_summarise(leads, release_waiting_of=leads)
    return expired


class DeliveryStateError(Exception):
    """The delivery cannot do what was asked in its current state (the API answers 409)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


RETRYABLE_STATUSES = (Delivery.Status.FAILED, Delivery.Status.DEAD, Delivery.Status.RETRYING, Delivery.Status.HELD)
CANCELLABLE_STATUSES = (
    Delivery.Status.PENDING,
    Delivery.Status.WAITING,
    Delivery.Status.HELD,
    Delivery.Status.RETRYING,
)


def delivery_retry(
    *, delivery: Delivery, actor: Optional[Any] = None, trigger: str = DeliveryAttempt.Trigger.MANUAL
) -> Delivery:
    """Attempt a failed, dead, retrying or held delivery now, with a fresh automatic retry budget."""
    with transaction.atomic():
        leads = leads_lock({delivery.lead_id})
        delivery = Delivery.objects.get(pk=delivery.pk)
        if delivery.status not in RETRYABLE_STATUSES:
            raise DeliveryStateError(f"A {delivery.get_status_display().lower()} delivery cannot be retried.")
        now = timezone.now()
        delivery.status = Delivery.Status.PENDING
        delivery.next_attempt_at = now
        delivery.claimed_until = None
        delivery.claim_token = None
        delivery.attempts_before_retry = delivery.attempt_count
        delivery.retry_requested_by = actor
        delivery.retry_trigger = trigger
        delivery.updated = now
        delivery.save()
        leads_summarise(leads)
        queue.pump_hint_on_commit()
    return delivery


def delivery_cancel(*, delivery: Delivery, actor: Any) -> Delivery:
    """Cancel a delivery that is not in flight: pending, waiting, held or retrying.

    The change is a conditional UPDATE, so a delivery a worker has just claimed (and is sending
    now) is left alone: cancelling it under the worker would throw away what RG answers.
    Raises DeliveryStateError when the delivery is no longer cancellable.
    """
    with transaction.atomic():
        leads = leads_lock({delivery.lead_id})
        cancelled = Delivery.objects.filter(pk=delivery.pk, status__in=CANCELLABLE_STATUSES).update(
            status=Delivery.Status.CANCELLED,
            next_attempt_at=None,
            last_error=f"Cancelled by {actor.get_username()}.",
            updated=timezone.now(),
        )
        delivery = Delivery.objects.get(pk=delivery.pk)
        if not cancelled:
            raise DeliveryStateError(
                f"This delivery is {delivery.get_status_display().lower()} now, so it was not cancelled: "
                "only pending, waiting, held or retrying deliveries can be."
            )
        # Later deliveries of the lead may have been waiting for this one.
        leads_summarise(leads, release_waiting_of=leads)
    return delivery


def delivery_held_cancel(*, lead_pk: int, reason: str) -> int:
    """Cancel the lead's first held delivery and every one queued behind it (they could never go
    once it is cancelled: an update needs its create). Returns how many were cancelled."""
    with transaction.atomic():
        leads = leads_lock({lead_pk})
        held = Delivery.objects.filter(lead_id=lead_pk, status=Delivery.Status.HELD)
        first_held = held.order_by("sequence").values_list("sequence", flat=True).first()
        if first_held is None:
            return 0
        cancelled = Delivery.objects.filter(
            lead_id=lead_pk,
            sequence__gte=first_held,
            status__in=[Delivery.Status.HELD, Delivery.Status.WAITING, Delivery.Status.PENDING],
        ).update(
            status=Delivery.Status.CANCELLED,
            next_attempt_at=None,
            last_error=reason,
            updated=timezone.now(),
        )
        leads_summarise(leads)
    return cancelled
