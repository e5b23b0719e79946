"""The delivery engine: a pump keeps many calls to RG in flight from one worker process.

A Celery task runs one pump (`pump_run`). It claims due deliveries in batches as slots free up
(leads.delivery owns the claim and every state change), hands their calls to a sender that
keeps up to DELIVERY_IN_FLIGHT of them in flight (leads.realgeeks), and records what came back
a batch at a time. It claims for DELIVERY_PUMP_SECONDS, finishes what is in flight and asks
for another pump if work remains, so the worker process is shared fairly with other tasks; with
nothing to do it lingers DELIVERY_PUMP_IDLE_SECONDS, then stops.

Scaling out needs no coordination beyond the database: when a claim fills every free slot, the
pump asks for one more pump (at most once a FAN_OUT_INTERVAL), so idle worker processes on any
machine join in until the backlog is gone.
"""

import concurrent.futures
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Optional

from django.conf import settings
from django.utils import timezone

from grants.models import Partner
from leads import circuit, delivery, planner, queue, realgeeks

logger = logging.getLogger(__name__)

# A pump with free slots claims at most this often, so claims come in batches, not one by one.
CLAIM_INTERVAL = 0.01
# The ready buffer: a pump holds DELIVERY_IN_FLIGHT calls plus this share more, claimed.
READY_SHARE = 2
IDLE_POLL_INTERVAL = 0.1
# Finished calls are recorded when this many are waiting, or the oldest has waited this long.
RECORD_BATCH = 200
RECORD_INTERVAL = 0.01
# Leases that ran out (a dead worker's claims) and circuits due a probe are looked for this often.
RECOVERY_INTERVAL = 1.0
FAN_OUT_INTERVAL = 1.0

_senders: dict[tuple[int, str, int], "realgeeks.ThreadSender | realgeeks.AsyncioSender"] = {}
_senders_lock = threading.Lock()


def sender() -> "realgeeks.ThreadSender | realgeeks.AsyncioSender":
    """This process's sender, made after a fork (a child must not share its parent's sockets)."""
    key = (os.getpid(), settings.DELIVERY_SENDER, settings.DELIVERY_IN_FLIGHT)
    with _senders_lock:
        if key not in _senders:
            _senders[key] = realgeeks.sender_new(settings.DELIVERY_SENDER, settings.DELIVERY_IN_FLIGHT)
        return _senders[key]


@dataclass
class RateLimit:
    """A token bucket per partner (DELIVERY_PARTNER_MAX_PER_SECOND, in this process)."""

    per_second: float
    tokens: dict[int, float] = field(default_factory=dict)
    checked: dict[int, float] = field(default_factory=dict)

    def allowance(self, partner_id: int) -> int:
        now = time.monotonic()
        burst = max(1.0, self.per_second)
        elapsed = now - self.checked.get(partner_id, now - 1.0)
        self.tokens[partner_id] = min(burst, self.tokens.get(partner_id, burst) + elapsed * self.per_second)
        self.checked[partner_id] = now
        return int(self.tokens[partner_id])

    def spend(self, partner_id: int, calls: int) -> None:
        self.tokens[partner_id] = self.tokens.get(partner_id, 0.0) - calls


@dataclass(frozen=True)
class PumpResult:
    recorded: int
    statuses: dict[str, int]


class Pump:
    def __init__(self, *, slots: Optional[int] = None) -> None:
        self.slots = slots or settings.DELIVERY_IN_FLIGHT
        # Claimed beyond the slots: a ready buffer the sender starts the moment a call finishes,
        # so a slot never waits for this thread's next claim (a database round trip).
        self.holding = self.slots + max(1, self.slots // READY_SHARE)
        self.token = uuid.uuid4()  # names this pump's claims
        self.sender = sender()
        self.rate = (
            RateLimit(settings.DELIVERY_PARTNER_MAX_PER_SECOND)
            if settings.DELIVERY_PARTNER_MAX_PER_SECOND > 0
            else None
        )
        self._credentials: dict[int, realgeeks.Credentials] = {}
        self.in_flight: dict[concurrent.futures.Future[realgeeks.Outcome], delivery.Claimed] = {}
        self.finished: list[tuple[delivery.Claimed, realgeeks.Outcome]] = []
        self.statuses: dict[str, int] = {}
        self.recorded = 0

    def credentials_for(self, partner_id: int) -> realgeeks.Credentials:
        """Decrypted once per pump: a changed password is used by the next pump, seconds later."""
        if partner_id not in self._credentials:
            self._credentials[partner_id] = realgeeks.Credentials.for_partner(Partner.objects.get(pk=partner_id))
        return self._credentials[partner_id]

    def run(self, *, budget_seconds: float, idle_seconds: float) -> PumpResult:
        started = time.monotonic()
        deadline = started + budget_seconds
        last_work = started
        next_claim = next_recovery = next_fan_out = started
        oldest_finished: Optional[float] = None
        # The last claim found nothing and nothing was recorded since (a recorded outcome can
        # unblock the next delivery of its lead), so stopping now leaves nothing due behind.
        drained = False
        poll = CLAIM_INTERVAL
        while True:
            now = time.monotonic()
            free = self.holding - len(self.in_flight)
            # Claim when the ready buffer runs low (or anything is free while idle), not for
            # every slot that frees: fewer, larger claims.
            wanted = free >= max(1, (self.holding - self.slots) // 2) or (free > 0 and not self.in_flight)
            if now < deadline and wanted and now >= next_claim:
                recovery = now >= next_recovery
                if recovery:
                    next_recovery = now + RECOVERY_INTERVAL
                claimed = self._claim(free, recovery=recovery)
                # A claim that found nothing (or only what the partner's cap let through) is not
                # repeated at once: the next chance is a recorded outcome, or a wait that doubles
                # while claims keep coming back empty (an idle pump costs the database little).
                poll = CLAIM_INTERVAL if claimed else min(poll * 2, IDLE_POLL_INTERVAL)
                next_claim = now + (CLAIM_INTERVAL if len(claimed) >= free else poll)
                drained = not claimed
                if claimed:
                    last_work = now
                if len(claimed) >= free and now >= next_fan_out:
                    # More is due than this pump can take: ask for help from idle workers.
                    queue.pump_hint(force=True)
                    next_fan_out = now + FAN_OUT_INTERVAL
            if not self.in_flight and not self.finished:
                if now >= deadline or (drained and now - last_work >= idle_seconds):
                    break
                time.sleep(max(0.0, min(next_claim, deadline) - time.monotonic()))
                continue
            if self.in_flight:
                wait = max(0.001, min(next_claim - now, RECORD_INTERVAL))
                done, _ = concurrent.futures.wait(
                    self.in_flight, timeout=wait, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in done:
                    self.finished.append((self.in_flight.pop(future), future.result()))
                if self.finished and oldest_finished is None:
                    oldest_finished = time.monotonic()
            if self.finished and (
                len(self.finished) >= RECORD_BATCH
                or not self.in_flight
                or time.monotonic() - (oldest_finished or 0.0) >= RECORD_INTERVAL
            ):
                self._record()
                oldest_finished = None
                last_work = time.monotonic()
                drained = False
                # Recorded outcomes free slots and may unblock the next delivery of their leads.
                next_claim = min(next_claim, last_work + CLAIM_INTERVAL)
        if time.monotonic() >= deadline and self.recorded:
            # Out of time, perhaps not out of work: the next pump carries on.
            queue.pump_hint(force=True)
        return PumpResult(self.recorded, self.statuses)

    def _claim(self, free: int, *, recovery: bool) -> list[delivery.Claimed]:
        probes = circuit.probes_take(timezone.now()) if recovery else []
        claimed = delivery.deliveries_claim(
            slots=free,
            token=self.token,
            credentials_for=self.credentials_for,
            allowance_for=self.rate.allowance if self.rate else None,
            probe_sites=probes,
            lease_expired_too=recovery,
        )
        for item in claimed:
            if self.rate:
                self.rate.spend(item.partner_id, 1)
            self.in_flight[self.sender.submit(item.call)] = item
        return claimed

    def _record(self) -> None:
        finished, self.finished = self.finished, []
        statuses = delivery.deliveries_record(finished, token=self.token)
        self.recorded += len(statuses)
        for status in statuses.values():
            self.statuses[status] = self.statuses.get(status, 0) + 1


def pump_run(*, budget_seconds: Optional[float] = None, idle_seconds: Optional[float] = None) -> PumpResult:
    """Run one pump in this process until its budget is spent or it has been idle long enough."""
    planner.statistics_refresh()
    pump = Pump()
    result = pump.run(
        budget_seconds=settings.DELIVERY_PUMP_SECONDS if budget_seconds is None else budget_seconds,
        idle_seconds=settings.DELIVERY_PUMP_IDLE_SECONDS if idle_seconds is None else idle_seconds,
    )
    if result.recorded:
        logger.info(
            "pump %s: recorded %s attempts %s",
            pump.token,
            result.recorded,
            result.statuses,
            extra={"pump": str(pump.token), "recorded": result.recorded, "statuses": result.statuses},
        )
    return result
