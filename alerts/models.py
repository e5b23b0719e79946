"""Alerts: where a partner's notices go (channels), what went wrong (incidents), and every notice
sent about it (notifications, each with its attempts)."""

import uuid
from datetime import datetime

from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from grants.fields import EncryptedTextField


class Channel(models.Model):
    """One place a partner's incident notices go: email addresses, a Slack incoming webhook, or a
    signed webhook (Standard Webhooks)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        SLACK = "slack", "Slack incoming webhook"
        WEBHOOK = "webhook", "Signed webhook (Standard Webhooks)"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    partner = models.ForeignKey(
        "grants.Partner",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_channels",
        help_text="Empty: an operator channel. It gets the incidents that are no partner's (no worker "
        "heartbeat, a grant email no partner claims); superusers manage it.",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=100)
    target = EncryptedTextField(
        help_text="Email addresses (comma-separated), or the URL to POST to. Encrypted at rest: a Slack "
        "incoming-webhook URL is itself a credential."
    )
    secret = EncryptedTextField(
        blank=True,
        default="",
        help_text="Signed webhooks: the signing secret, whsec_ then base64 (encrypted at rest).",
    )
    is_active = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["partner", "name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def is_operator_channel(self) -> bool:
        return self.partner_id is None

    @property
    def is_http(self) -> bool:
        return self.kind in (self.Kind.SLACK, self.Kind.WEBHOOK)

    def target_shown(self) -> str:
        """The target as pages show it: addresses in full, a URL cut to its scheme and host (the
        rest of a Slack URL is its token)."""
        if not self.is_http:
            return self.target
        scheme, _, rest = self.target.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}/…"

    def email_addresses(self) -> list[str]:
        return [address.strip() for address in self.target.split(",") if address.strip()]


class Incident(models.Model):
    """Something that went wrong for a partner (or for everyone), from when a rule first saw it
    until it no longer did."""

    class Rule(models.TextChoices):
        NEEDS_HUMAN = "needs_human", "Deliveries failed or dead"
        CIRCUIT_OPEN = "circuit_open", "Circuit open"
        SITE_ACCESS = "site_access", "Site doubtful or revoked"
        BACKLOG_LATE = "backlog_late", "Due deliveries waiting"
        WORKERS_SILENT = "workers_silent", "No worker heartbeat"
        GRANT_EMAIL_REVIEW = "grant_email_review", "Grant emails waiting for review"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    partner = models.ForeignKey(
        "grants.Partner",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="incidents",
        help_text="Empty for incidents that are no partner's: superusers see them, operator channels get them.",
    )
    rule = models.CharField(max_length=32, choices=Rule.choices)
    subject = models.CharField(
        max_length=100,
        blank=True,
        help_text="What the incident is about within its rule (a site UUID); empty for the partner as a whole.",
    )
    title = models.CharField(max_length=300)
    details = models.JSONField(default=dict, help_text="What the rule saw, last time it looked.")
    opened_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    announced = models.BooleanField(
        default=False,
        help_text="Its opening was notified, so its recovery will be. One opened within ALERTS_RATE_LIMIT_MINUTES "
        "of the last notice for the same partner, rule and subject is recorded but stays quiet until then.",
    )
    last_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            # incidents_evaluate: at most one open incident per partner, rule and subject, also
            # for the partner-less ones (NULL would never collide in a plain unique constraint).
            models.UniqueConstraint(
                Coalesce("partner", Value(0), output_field=models.BigIntegerField()),
                "rule",
                "subject",
                condition=Q(resolved_at__isnull=True),
                name="incident_one_open_per_key",
            ),
        ]
        indexes = [
            # incidents_evaluate reads the open incidents of each rule.
            models.Index(fields=["rule"], condition=Q(resolved_at__isnull=True), name="incident_open_rule"),
            # incidents_evaluate's rate limit: the last notice about the same key.
            models.Index(fields=["rule", "subject", "partner", "-last_notified_at"], name="incident_key_notified"),
            # The alerts page: a partner's newest incidents.
            models.Index(fields=["partner", "-opened_at"], name="incident_partner_opened"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class NotificationQuerySet(models.QuerySet["Notification"]):
    def due(self, now: datetime) -> "NotificationQuerySet":
        """Waiting to be sent, or claimed by a sender that died (its claim ran out)."""
        return self.filter(
            Q(status__in=[Notification.Status.PENDING, Notification.Status.RETRYING], next_attempt_at__lte=now)
            | Q(status=Notification.Status.SENDING, claimed_until__lt=now)
        )


class Notification(models.Model):
    """One notice to one channel about one event; sent, and retried, until it goes through or
    ALERTS_NOTIFY_MAX_ATTEMPTS is spent. Its message is fixed when it is queued."""

    class Event(models.TextChoices):
        OPENED = "opened", "Incident opened"
        RECOVERED = "recovered", "Incident recovered"
        TEST = "test", "Test"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        RETRYING = "retrying", "Retrying"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (out of attempts)"

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, help_text="Also the webhook-id: the same for every retry."
    )
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notifications")
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    event = models.CharField(max_length=16, choices=Event.choices)
    subject = models.CharField(max_length=300, help_text="The email subject.")
    text = models.TextField(help_text="The message: the email body and the Slack text.")
    payload = models.JSONField(help_text="The signed webhook's JSON body.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A sender's claim; once past, another sender may take it."
    )
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            # notifications_send: pending and retrying notices that are due.
            models.Index(
                fields=["next_attempt_at"], name="notification_due", condition=Q(status__in=["pending", "retrying"])
            ),
            # notifications_send: claims whose sender died.
            models.Index(fields=["claimed_until"], name="notification_claim", condition=Q(status="sending")),
            # The channel page's history, newest first.
            models.Index(fields=["channel", "-created"], name="notification_channel_created"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} to {self.channel}: {self.status}"

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.public_id.hex}"


class NotificationAttempt(models.Model):
    """One try at sending a notification, written before the call and completed after it."""

    class Outcome(models.TextChoices):
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SENDING)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True, help_text="The start of the receiver's answer.")
    started = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["notification", "number"]
        constraints = [
            models.UniqueConstraint(fields=["notification", "number"], name="notification_attempt_unique_number")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.notification_id}: {self.outcome}"
