"""Leads, their deliveries to Real Geeks (the outbox) and every attempt at one."""

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Optional

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from grants.models import Site
from leads.rg_operations import OPERATIONS
from leads.search import PhoneDigits, phone_digits


class Operation(models.TextChoices):
    """The RG Incoming API call a delivery makes: one choice per row of leads.rg_operations, which
    says what each one is (a test checks they match). Written out, not built from the table, so
    the stored values and mypy's view of the members stay plain."""

    CREATE_LEAD = "create_lead", "Create lead"
    UPDATE_LEAD = "update_lead", "Update lead"
    ADD_ACTIVITIES = "add_activities", "Add activities"
    POTENTIAL_SELLER = "potential_seller", "Potential seller lead"
    UPDATE_LEAD_V2 = "update_lead_v2", "Update lead (v2)"


# Operations that bring a lead into existence at RG; the others need one of these delivered first.
CREATING_OPERATIONS = tuple(Operation(op.name) for op in OPERATIONS.values() if op.creates_lead)
# LeadQuerySet.with_operation: up to this many deliveries, an operation's leads are found from its deliveries.
RARE_OPERATION_MAX = 5000
WHOLE_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _site_ids(site_uuid: uuid.UUID | str) -> list[int]:
    # Literal ids (one site per partner has this UUID), not a subquery: the database then reads
    # the (site, created, id) index in order instead of testing every lead of the partner.
    return list(Site.objects.filter(site_uuid=site_uuid).values_list("pk", flat=True))


class LeadQuerySet(models.QuerySet["Lead"]):
    def lock(self, pk: int) -> "Lead":
        """The lead, row-locked until the transaction ends: its deliveries change one at a time."""
        return self.select_for_update().get(pk=pk)

    def search(self, text: str) -> "LeadQuerySet":
        """What staff typed, in any case. A whole email address, lead id or site UUID is looked up
        exactly, on an index. A phone number or part of one (leads.search.phone_digits) matches
        the leads whose phone has those digits, however either was punctuated: on PostgreSQL a
        trigram index finds them, so it searches the phone only. Other text matches anywhere in
        the email, name or phone, which reads the leads newest first until a page is full (so a
        rare word reads many of them)."""
        text = text.strip()
        if not text:
            return self
        if WHOLE_EMAIL.fullmatch(text):
            return self.alias(email_lower=Lower("email")).filter(email_lower=text.lower())
        try:
            value = uuid.UUID(text)
        except ValueError:
            digits = phone_digits(text)
            if digits is not None:
                return self.alias(phone_digits=PhoneDigits("phone")).filter(phone_digits__contains=digits)
            return self.filter(Q(email__icontains=text) | Q(name__icontains=text) | Q(phone__icontains=text))
        # One indexed lookup or the other: an OR of the two would make the database walk every
        # lead. A lead id that is also a site UUID would be a sender's mistake; the site wins.
        sites = _site_ids(value)
        return self.filter(site_id__in=sites) if sites else self.filter(lead_id=value)

    def with_operation(self, operation: str) -> "LeadQuerySet":
        """Leads with at least one delivery of this kind.

        Two plans, because one is fast where the other is slow: a rare operation's few leads are
        found from the deliveries' (operation, lead) index and sorted; a common one is checked
        lead by lead while walking the list's index in order, which stops after one page. A count
        capped at RARE_OPERATION_MAX reads at most that many index entries to choose.
        """
        of_kind = Delivery.objects.filter(operation=operation)
        if of_kind[: RARE_OPERATION_MAX + 1].count() <= RARE_OPERATION_MAX:
            return self.filter(pk__in=of_kind.values("lead_id"))
        return self.filter(models.Exists(of_kind.filter(lead=models.OuterRef("pk"))))

    def filter_by(self, filters: Mapping[str, Any]) -> "LeadQuerySet":
        """The list filters shared by the read API and the dashboard; absent keys do not filter.

        Keys: status, site (UUID), partner (slug), operation, http_status, created_after and
        created_before (datetimes; after is inclusive, before exclusive), q (see `search`).
        """
        leads = self
        if filters.get("status"):
            leads = leads.filter(status=filters["status"])
        if filters.get("site"):
            leads = leads.filter(site_id__in=_site_ids(filters["site"]))
        if filters.get("partner"):
            leads = leads.filter(partner__slug=filters["partner"])
        if filters.get("operation"):
            leads = leads.with_operation(filters["operation"])
        if filters.get("http_status") is not None:
            leads = leads.filter(last_status_code=filters["http_status"])
        if filters.get("created_after"):
            leads = leads.filter(created__gte=filters["created_after"])
        if filters.get("created_before"):
            leads = leads.filter(created__lt=filters["created_before"])
        if filters.get("q"):
            leads = leads.search(filters["q"])
        return leads


class Lead(models.Model):
    """A lead as the partner sent it; `data` is its current state, merged from every update."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        HELD = "held", "Held (site not granted)"
        RETRYING = "retrying", "Retrying"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    # No index of their own: every push would pay for them, and the composite indexes below
    # (lead_unique_per_partner, lead_site_created) begin with these columns.
    partner = models.ForeignKey("grants.Partner", on_delete=models.CASCADE, related_name="leads", db_index=False)
    site = models.ForeignKey("grants.Site", on_delete=models.PROTECT, related_name="leads", db_index=False)
    lead_id = models.UUIDField(help_text="The public id, and RG's `id` for this lead.")
    data = models.JSONField(default=dict, help_text="Current lead body: the create merged with later updates.")
    email = models.CharField(max_length=254, blank=True)
    name = models.CharField(max_length=300, blank=True)
    phone = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=16,
        choices=Status.choices,
        default=Status.PENDING,
        help_text="Summary of the lead's deliveries, kept current so list pages need no aggregation.",
    )
    created_elsewhere = models.BooleanField(
        default=False,
        help_text="First seen in an update or activity: its create reached RG another way; nothing waits for one.",
    )
    last_sequence = models.PositiveIntegerField(
        default=0,
        help_text="The sequence of the lead's latest delivery. Every new delivery takes the next one, and the "
        "lead's UPDATE checks it, so two pushes of one lead never lose each other's changes.",
    )
    activity_count = models.PositiveIntegerField(
        default=0, help_text="Activities accepted for this lead, all time (LEAD_MAX_ACTIVITIES caps it)."
    )
    last_status_code = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="RG's last HTTP status for the delivery behind `status` (list pages)."
    )
    last_error = models.CharField(
        max_length=500, blank=True, help_text="Why the delivery behind `status` failed or waits (list pages)."
    )
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    objects = LeadQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [models.UniqueConstraint(fields=["partner", "lead_id"], name="lead_unique_per_partner")]
        indexes = [
            # The read API and dashboard list a partner's leads newest first (keyset pages).
            models.Index(fields=["partner", "-created", "-id"], name="lead_partner_created"),
            # The dashboard's list for superusers, who see every partner's leads.
            models.Index(fields=["-created", "-id"], name="lead_created"),
            # The same lists filtered by status.
            models.Index(fields=["partner", "status", "-created", "-id"], name="lead_partner_status"),
            # ... by site (a site belongs to one partner).
            models.Index(fields=["site", "-created", "-id"], name="lead_site_created"),
            # ... by RG's last HTTP status (the dashboard's "422s of this partner").
            models.Index(fields=["partner", "last_status_code", "-created", "-id"], name="lead_partner_http"),
            # Search by lead id across partners (superusers); one partner's uses the unique constraint.
            models.Index(fields=["lead_id"], name="lead_lead_id"),
            # Search by a whole email address, in any case (LeadQuerySet.search).
            models.Index(Lower("email"), name="lead_email_lower"),
        ]

    def __str__(self) -> str:
        return self.name or self.email or str(self.lead_id)

    @property
    def public_id(self) -> uuid.UUID:
        """The id staff and RG know the lead by (the audit trail names objects by `public_id`)."""
        return self.lead_id

    def refresh_status(self) -> None:
        """Recompute `status`, and the HTTP status and error behind it, from the deliveries; save
        what changed."""
        rows = [DeliveryFacts._make(row) for row in self.deliveries.values_list(*DeliveryFacts._fields)]
        status, code, error = lead_summary_from(rows)
        changes = {
            name: value
            for name, value in (("status", status), ("last_status_code", code), ("last_error", error[:500]))
            if getattr(self, name) != value
        }
        if changes:
            for name, value in changes.items():
                setattr(self, name, value)
            Lead.objects.filter(pk=self.pk).update(**changes)

    def refresh_identity(self) -> None:
        """Copy the searchable fields out of `data`."""
        self.email, self.name, self.phone = lead_identity(self.data)


def lead_identity(data: Mapping[str, Any]) -> tuple[str, str, str]:
    """A lead's searchable (email, name, phone), cut to their columns' lengths."""
    name = " ".join(str(data.get(k) or "") for k in ("first_name", "last_name")).strip()
    return str(data.get("email") or "")[:254], name[:300], str(data.get("phone") or "")[:64]


class DeliveryFacts(NamedTuple):
    """What a lead's summary reads of one of its deliveries: the Delivery fields of the same names."""

    operation: str
    sequence: int
    status: str
    last_status_code: Optional[int]
    last_error: str


class LeadSummary(NamedTuple):
    """The Lead fields of the same names, as its deliveries make them (lead_summary_from)."""

    status: str
    last_status_code: Optional[int]
    last_error: str


def lead_summary_from(deliveries: Sequence[DeliveryFacts]) -> LeadSummary:
    """A lead's status, last HTTP status and last error from its deliveries.

    A failure stops counting once a later delivery of the same kind was delivered (a resend
    or a retry fixed it); otherwise the most urgent state wins, and the HTTP status and error
    are those of the latest delivery in that state: the one staff need to look at.
    """

    def kind(operation: str) -> str:
        return "create" if operation in CREATING_OPERATIONS else operation

    delivered_at: dict[str, int] = {}
    for row in deliveries:
        if row.status == Delivery.Status.DELIVERED:
            delivered_at[kind(row.operation)] = max(row.sequence, delivered_at.get(kind(row.operation), 0))
    counting = [
        row
        for row in deliveries
        if row.status not in (Delivery.Status.FAILED, Delivery.Status.DEAD)
        or delivered_at.get(kind(row.operation), 0) < row.sequence
    ]
    for candidates, summary in (
        ({Delivery.Status.FAILED, Delivery.Status.DEAD}, Lead.Status.FAILED),
        ({Delivery.Status.RETRYING}, Lead.Status.RETRYING),
        ({Delivery.Status.HELD}, Lead.Status.HELD),
        ({Delivery.Status.PENDING, Delivery.Status.WAITING, Delivery.Status.CLAIMED}, Lead.Status.PENDING),
        ({Delivery.Status.DELIVERED}, Lead.Status.DELIVERED),
        ({Delivery.Status.CANCELLED}, Lead.Status.CANCELLED),
    ):
        behind = [row for row in counting if row.status in candidates]
        if behind:
            latest = max(behind, key=lambda row: row.sequence)
            return LeadSummary(summary, latest.last_status_code, latest.last_error or "")
    return LeadSummary(Lead.Status.PENDING, None, "")


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    def open(self) -> "DeliveryQuerySet":
        """Deliveries that will still be attempted without anyone acting."""
        return self.filter(status__in=Delivery.OPEN_STATUSES)

    def due(self, now: datetime) -> "DeliveryQuerySet":
        """Deliveries a worker should send by `now`: pending or retrying, their `next_attempt_at`
        reached (on the `delivery_due` partial index). Whether one may go before its lead's
        earlier deliveries is the claim's to decide. The claim's SQL says the same in
        leads.delivery._DUE; keep the two together."""
        return self.filter(status__in=Delivery.DUE_STATUSES, next_attempt_at__lte=now)

    def needing_a_human(self) -> "DeliveryQuerySet":
        return self.filter(status__in=[Delivery.Status.FAILED, Delivery.Status.DEAD])


class Delivery(models.Model):
    """One call to RG that must happen: the outbox row. The retry schedule lives here."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        WAITING = "waiting", "Waiting for an earlier delivery of the lead"
        HELD = "held", "Held (site not granted)"
        CLAIMED = "claimed", "In flight"
        RETRYING = "retrying", "Retrying"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (needs a human)"
        DEAD = "dead", "Dead (out of attempts)"
        CANCELLED = "cancelled", "Cancelled"

    class Origin(models.TextChoices):
        API = "api", "Push API"
        RESEND = "resend", "Resend"
        COMMAND = "command", "send command"
        DASHBOARD = "dashboard", "Dashboard"

    OPEN_STATUSES = (Status.PENDING, Status.WAITING, Status.HELD, Status.CLAIMED, Status.RETRYING)
    # Statuses a delivery goes out from once its `next_attempt_at` comes (DeliveryQuerySet.due);
    # the delivery_due index's condition below names the same two.
    DUE_STATUSES = (Status.PENDING, Status.RETRYING)
    # Statuses an earlier delivery of the same lead blocks a later one in (WAITING does not, or a
    # resent create behind a waiting update would wait forever).
    BLOCKING_STATUSES = (Status.PENDING, Status.HELD, Status.CLAIMED, Status.RETRYING)
    TERMINAL_STATUSES = (Status.DELIVERED, Status.FAILED, Status.DEAD, Status.CANCELLED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # delivery_unique_sequence (lead, sequence) serves lookups by lead; a second index would
    # cost every push a write.
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    sequence = models.PositiveIntegerField(help_text="Position among the lead's deliveries; they go out in this order.")
    operation = models.CharField(max_length=20, choices=Operation.choices)
    payload = models.JSONField(help_text="The request body sent to RG, fixed at acceptance.")
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.API)
    # Indexed only where set (delivery_actor below): a push has none.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    api_key = models.ForeignKey(
        "grants.ApiKey",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The key that pushed it (push API only); Idempotency-Key values are scoped to it.",
    )
    request_digest = models.CharField(
        max_length=64,
        blank=True,
        help_text="SHA-256 of the pushed operation and body: the same push again within PUSH_IDEMPOTENCY_SECONDS "
        "is a retry, not a new delivery.",
    )
    idempotency_key = models.CharField(
        max_length=255, blank=True, help_text="The push's Idempotency-Key header, if it sent one."
    )
    router_destinations = models.CharField(
        max_length=500,
        blank=True,
        help_text="The create's X-ROUTER-DESTINATIONS header (which of the site's Destinations get the lead), "
        "forwarded to RG as sent.",
    )
    retry_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # indexed only where set (delivery_retry_requested_by below)
        help_text="Who asked for the pending manual retry; its attempt names them.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    retry_trigger = models.CharField(
        max_length=16,
        blank=True,
        help_text="The DeliveryAttempt.Trigger of a pending manual or bulk retry; its attempt records it.",
    )
    attempt_count = models.PositiveIntegerField(default=0)
    attempts_before_retry = models.PositiveIntegerField(
        default=0, help_text="attempt_count when a person last retried it; the automatic budget counts from here."
    )
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker may try next; empty while waiting, held or finished."
    )
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A worker's lease; once past, the sweeper hands the row to another."
    )
    claim_token = models.UUIDField(null=True, blank=True, help_text="Names the claim that may record the outcome.")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["lead", "sequence"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["lead", "sequence"], name="delivery_unique_sequence"),
            # One delivery per Idempotency-Key and API key; a concurrent duplicate fails here.
            models.UniqueConstraint(
                fields=["api_key", "idempotency_key"],
                name="delivery_unique_idempotency_key",
                condition=~Q(idempotency_key=""),
            ),
        ]
        indexes = [
            # deliveries_sweep: pending/retrying rows that are due and not freshly published.
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due",
                condition=Q(status__in=["pending", "retrying"]),
            ),
            # deliveries_sweep: claims whose lease ran out (a worker died).
            models.Index(fields=["claimed_until"], name="delivery_claim_expiry", condition=Q(status="claimed")),
            # deliveries_sweep (held max age) and deliveries_release_held (by site, through lead).
            models.Index(fields=["created"], name="delivery_held_age", condition=Q(status="held")),
            # retry_failed and the dashboard's failure list.
            models.Index(fields=["status", "-created"], name="delivery_status_created"),
            # The leads list's operation filter (LeadQuerySet.with_operation): the leads of a rare operation.
            models.Index(fields=["operation", "lead"], name="delivery_operation_lead"),
            # Deleting a user sets these to NULL; only the few rows a person touched are indexed.
            models.Index(fields=["actor"], name="delivery_actor", condition=Q(actor__isnull=False)),
            models.Index(
                fields=["retry_requested_by"],
                name="delivery_retry_requested_by",
                condition=Q(retry_requested_by__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.operation} #{self.sequence} of {self.lead.lead_id}: {self.status}"


class DeliveryAttempt(models.Model):
    """One call to RG, written before the call and completed after it."""

    class Trigger(models.TextChoices):
        AUTOMATIC = "automatic", "Automatic (on acceptance)"
        SWEEPER = "sweeper", "Sweeper (scheduled retry or recovery)"
        MANUAL = "manual", "Manual retry"
        BULK = "bulk", "Bulk retry"

    class Outcome(models.TextChoices):
        STARTED = "started", "In progress"
        DELIVERED = "delivered", "Delivered"
        RETRY = "retry", "Failed, will retry"
        FAILED = "failed", "Failed permanently"
        DEAD = "dead", "Failed, out of attempts"
        INTERRUPTED = "interrupted", "Interrupted (worker stopped)"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    request_method = models.CharField(max_length=8)
    request_url = models.CharField(max_length=500)
    request_body = models.TextField(blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="Truncated to ATTEMPT_BODY_MAX_CHARS.")
    # db_default too: the engine's batch INSERT (leads.delivery) names only the columns it knows
    # at the start of a call, and a constant default adds the column without a table rewrite.
    response_headers = models.JSONField(
        default=dict,
        db_default={},
        blank=True,
        help_text="RG's response headers, secrets redacted and size bounded (leads.headers); "
        "empty when no answer came, for attempts made before they were stored, and once pruned.",
    )
    error = models.CharField(max_length=500, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.STARTED)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    bodies_pruned_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When RETENTION_ATTEMPT_BODY_DAYS pruned the request and response bodies (each now says so); "
        "the status, error, timing and outcome are kept.",
    )

    class Meta:
        ordering = ["delivery", "number"]
        indexes = [
            # delivery_attempt marks attempts left STARTED by a killed worker as interrupted.
            models.Index(fields=["delivery"], name="attempt_started", condition=Q(outcome="started")),
            # leads.stats (the overview): attempts in a time window grouped by hour and outcome,
            # and their durations sorted for the percentiles, read from the index alone.
            models.Index(fields=["started", "outcome", "duration_ms"], name="attempt_window"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"


class BulkRetry(models.Model):
    """One staff request to retry many failed or dead deliveries, run in chunks by a worker.

    The deliveries are chosen when the job is created (its items), so the count staff confirmed
    is the count retried, whatever happens to the filter's matches meanwhile.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    partner = models.ForeignKey("grants.Partner", on_delete=models.CASCADE, related_name="bulk_retries")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    filters = models.JSONField(default=dict, help_text="The filter staff chose, as shown on the job's page.")
    total = models.PositiveIntegerField(default=0, help_text="Deliveries chosen (at most BULK_RETRY_MAX_DELIVERIES).")
    done = models.PositiveIntegerField(default=0, help_text="Deliveries the job has handled so far.")
    retried = models.PositiveIntegerField(default=0, help_text="Handled and sent to be attempted again.")
    skipped = models.PositiveIntegerField(
        default=0, help_text="Handled but left alone: no longer failed or dead when the job reached them."
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(
        default=timezone.now, help_text="Last progress; bulk_retries_resume re-publishes jobs that stopped moving."
    )
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = "bulk retry"
        indexes = [
            # The bulk page lists a partner's newest jobs.
            models.Index(fields=["partner", "-created"], name="bulk_retry_partner_created"),
            # bulk_retries_resume: unfinished jobs whose progress stalled (a lost message).
            models.Index(fields=["updated"], name="bulk_retry_unfinished", condition=~Q(state="finished")),
        ]

    def __str__(self) -> str:
        return f"bulk retry {self.public_id}: {self.done}/{self.total} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state == self.State.FINISHED


class BulkRetryItem(models.Model):
    """One delivery a bulk retry chose, and what the job did with it."""

    class Result(models.TextChoices):
        PENDING = "pending", "Not reached yet"
        RETRIED = "retried", "Retried"
        SKIPPED = "skipped", "Skipped"

    job = models.ForeignKey(BulkRetry, on_delete=models.CASCADE, related_name="items")
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="bulk_retry_items")
    result = models.CharField(max_length=16, choices=Result.choices, default=Result.PENDING)
    note = models.CharField(max_length=200, blank=True, help_text="Why it was skipped.")

    class Meta:
        ordering = ["job", "id"]
        constraints = [models.UniqueConstraint(fields=["job", "delivery"], name="bulk_retry_item_unique")]
        indexes = [
            # bulk_retry_run takes the job's next pending items in id order, a chunk at a time.
            models.Index(fields=["job", "result", "id"], name="bulk_retry_item_next"),
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id} in {self.job_id}: {self.result}"


# Upper bounds (ms) of the attempt-duration histogram's buckets, Prometheus style: each `le_<bound>`
# column counts the timed attempts that took that long or less, and `timed` is the +Inf bucket.
# Narrow where RG usually answers (tens to hundreds of ms), so estimated percentiles are close.
DURATION_BUCKETS_MS = (25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 20000)


def _duration_bucket(bound: int) -> models.IntegerField:
    return models.IntegerField(default=0, help_text=f"Timed attempts that took {bound} ms or less.")


class AttemptHour(models.Model):
    """Finished attempts (every outcome but STARTED) counted per hour they started in, partner,
    outcome and failure reason: the overview reads these few rows instead of the attempts.

    leads.rollup keeps it current (the engine adds each recorded batch in the same transaction)
    and rebuilds it from the attempts (`manage.py rollup_rebuild`). Retention does not prune it:
    a row is an hour's summary, a few dozen a day per partner, and attempts are never deleted.
    """

    hour = models.DateTimeField(help_text="The first instant of the UTC hour the attempts started in.")
    # No index of its own: the key below starts with the hour, which every reader bounds.
    partner = models.ForeignKey("grants.Partner", on_delete=models.CASCADE, related_name="+", db_index=False)
    outcome = models.CharField(max_length=16, choices=DeliveryAttempt.Outcome.choices)
    response_status = models.PositiveSmallIntegerField(
        default=0, help_text="RG's HTTP status; 0 when no answer came (not NULL, so the key below matches it)."
    )
    error = models.CharField(max_length=500, blank=True, help_text="The attempts' error summary, as stored on them.")
    attempts = models.IntegerField(default=0)
    last_started = models.DateTimeField(help_text="When the latest of these attempts started.")
    timed = models.IntegerField(default=0, help_text="Attempts with a duration (the histogram's +Inf bucket).")
    duration_ms_sum = models.BigIntegerField(default=0)
    duration_ms_max = models.IntegerField(default=0)
    le_25 = _duration_bucket(25)
    le_50 = _duration_bucket(50)
    le_75 = _duration_bucket(75)
    le_100 = _duration_bucket(100)
    le_150 = _duration_bucket(150)
    le_200 = _duration_bucket(200)
    le_250 = _duration_bucket(250)
    le_300 = _duration_bucket(300)
    le_400 = _duration_bucket(400)
    le_500 = _duration_bucket(500)
    le_750 = _duration_bucket(750)
    le_1000 = _duration_bucket(1000)
    le_1500 = _duration_bucket(1500)
    le_2000 = _duration_bucket(2000)
    le_3000 = _duration_bucket(3000)
    le_5000 = _duration_bucket(5000)
    le_10000 = _duration_bucket(10000)
    le_20000 = _duration_bucket(20000)

    class Meta:
        constraints = [
            # The upsert's conflict target (leads.rollup), and the overview's range on `hour`.
            models.UniqueConstraint(
                fields=["hour", "partner", "outcome", "response_status", "error"], name="attempt_hour_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 partner {self.partner_id} {self.outcome}: {self.attempts}"


@receiver(post_save, sender=DeliveryAttempt, dispatch_uid="leads.attempt_hour_count_saved")
def _attempt_hour_count_saved(sender: Any, instance: DeliveryAttempt, created: bool, raw: bool, **kwargs: Any) -> None:
    """An attempt saved through the ORM with its outcome already final (scripts, demo data, tests)
    is counted like one the engine records; the engine writes attempts in raw batches and counts
    those itself. Fixtures (`raw`) are left to `manage.py rollup_rebuild`."""
    if created and not raw and instance.outcome != DeliveryAttempt.Outcome.STARTED:
        from leads import rollup  # leads.rollup imports these models

        rollup.attempt_saved(instance)
