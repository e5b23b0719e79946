"""State of the local Real Geeks stand-in: accounts, leads it received, its request log, faults."""

import hashlib
import hmac
import math

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


def _hash_password(password: str) -> str:
    # Fast on purpose: the sandbox checks HTTP Basic on every request, as RG does.
    return hashlib.sha256(password.encode()).hexdigest()


class SandboxAccount(models.Model):
    """Incoming API credentials the sandbox accepts, and the sites they may send to."""

    username = models.CharField(max_length=200, unique=True)
    password_hash = models.CharField(max_length=64)
    site_uuids = models.JSONField(default=list, help_text="Site UUIDs (strings) this account may send to.")
    created = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.username

    def set_password(self, password: str) -> None:
        self.password_hash = _hash_password(password)

    def check_password(self, password: str) -> bool:
        return hmac.compare_digest(self.password_hash, _hash_password(password))

    def may_send_to(self, site_uuid: str) -> bool:
        return site_uuid in self.site_uuids


class SandboxLead(models.Model):
    """A lead as the sandbox holds it: the merged current data RG would show for it."""

    class Kind(models.TextChoices):
        LEAD = "lead"
        POTENTIAL_SELLER = "potential_seller"

    site_uuid = models.UUIDField()
    lead_id = models.UUIDField(help_text="The sender's id, whatever spelling it was sent in.")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.LEAD)
    data = models.JSONField(default=dict, help_text="Current fields, activities excluded.")
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site_uuid", "lead_id"], name="sandbox_lead_unique_per_site")]

    def __str__(self) -> str:
        return f"{self.lead_id} on {self.site_uuid}"


class SandboxActivity(models.Model):
    """One activity a lead received, in arrival order (the primary key)."""

    lead = models.ForeignKey(SandboxLead, on_delete=models.CASCADE, related_name="activities")
    data = models.JSONField()
    received = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.data.get('type')} for {self.lead_id}"


class SandboxUser(models.Model):
    """An agent or lender of a site, as `GET /sites/{site}/users` lists them."""

    site_uuid = models.UUIDField()
    user_id = models.CharField(max_length=50)
    data = models.JSONField(help_text="The RG User object, `id` included.")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["site_uuid", "user_id"], name="sandbox_user_unique_per_site")]

    def __str__(self) -> str:
        return f"{self.data.get('name')} ({self.user_id})"


class SandboxRequest(models.Model):
    """One request the sandbox answered, kept for tests and people to read. Never credentials."""

    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    site = models.CharField(max_length=100, blank=True, help_text="The site from the path; UUIDs in canonical form.")
    lead_id = models.CharField(
        max_length=100, blank=True, help_text="The lead id from the path or body; UUIDs in canonical form."
    )
    username = models.CharField(max_length=200, blank=True, help_text="The HTTP Basic username, if any.")
    status = models.PositiveSmallIntegerField()
    router_destinations = models.CharField(
        max_length=500,
        blank=True,
        help_text="The X-ROUTER-DESTINATIONS header as it came (RG's Ruby client sends it on creates).",
    )
    request_body = models.TextField(blank=True)
    response_body = models.TextField(blank=True)
    fault = models.CharField(max_length=100, blank=True, help_text="The injected fault that shaped the answer.")
    duration_ms = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        # For /sandbox/requests.json?site=..., which tests poll.
        indexes = [models.Index(fields=["site", "id"], name="sandbox_request_site")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"


def validate_finite(value: float) -> None:
    # The range validators let NaN through: every comparison with it is false.
    if not math.isfinite(value):
        raise ValidationError("Enter a finite number.")


class SandboxFaults(models.Model):
    """The faults the Incoming API injects now: one row (pk=1), so every web process sees it."""

    latency_ms = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(600_000)], help_text="Added to every answer."
    )
    error_rate = models.FloatField(
        default=0.0,
        validators=[validate_finite, MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of requests answered 500 or 503 (0 to 1).",
    )
    outage = models.BooleanField(default=False, help_text="Answer every request 503.")
    hang_seconds = models.FloatField(
        default=0.0,
        validators=[validate_finite, MinValueValidator(0.0), MaxValueValidator(3600.0)],
        help_text="Wait this long before answering, to outlast the client's read timeout.",
    )
    html_errors = models.BooleanField(default=False, help_text="Send error bodies as an HTML page, not JSON.")
    remaining = models.PositiveIntegerField(
        null=True, blank=True, help_text="Apply to only this many more requests; empty means every request."
    )
    updated = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return "sandbox faults"

    def is_active(self) -> bool:
        return bool(self.latency_ms or self.error_rate or self.outage or self.hang_seconds or self.html_errors)
