"""Partners, their API keys, the Real Geeks sites that granted them access, and the evidence:
Destination callbacks (with what they said about leads and agents) and grant emails."""

import hashlib
import hmac
import json
import secrets
import uuid
from datetime import datetime
from typing import Optional

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from grants.fields import EncryptedTextField

PARTNER_NAME_TAKEN = "Another partner already has this name (names are compared ignoring case)."


RESERVED_SLUGS = frozenset({"new"})


class Partner(models.Model):
    """A software company holding one Real Geeks Incoming API credential set."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    rg_username = models.CharField(max_length=200, help_text="Real Geeks Incoming API username.")
    rg_password = EncryptedTextField(help_text="Real Geeks Incoming API password (encrypted at rest).")
    webhook_secrets_encrypted = EncryptedTextField(
        default="",
        blank=True,
        help_text="JSON list of Destination secrets, newest first (encrypted at rest).",
    )
    rg_partner_id = models.CharField(
        max_length=200, blank=True, help_text="The Partner ID RG echoes back as partner_id in callbacks."
    )
    rg_company_id = models.CharField(
        max_length=200, blank=True, help_text="The company id in the partner's RG grant page URL."
    )
    rg_api_url = models.URLField(
        blank=True, help_text="Incoming API base URL; blank means the REALGEEKS_API_URL setting."
    )
    grant_email_address = models.EmailField(
        blank=True,
        help_text="Address RG's grant emails reach; inbound messages sent to it belong to this partner.",
    )
    is_active = models.BooleanField(default=True)
    staff = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="partners",
        help_text="Staff users (not superusers) who may see and act on this partner's data.",
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            # Staff pick a partner by name (filters, the grant email paste): two alike would be
            # indistinguishable.
            models.UniqueConstraint(
                Lower("name"),
                name="grants_partner_name_unique_ci",
                violation_error_message=PARTNER_NAME_TAKEN,
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # The dashboard's /partners/new/ page would shadow a partner of this slug. Forms and the
        # services all call full_clean, so this one check covers every way a slug is set.
        if self.slug in RESERVED_SLUGS:
            raise ValidationError({"slug": f"“{self.slug}” is a dashboard page's name; choose another slug."})

    @property
    def webhook_secrets(self) -> list[str]:
        """Destination secrets, newest first; any of them verifies a callback."""
        if not self.webhook_secrets_encrypted:
            return []
        return list(json.loads(self.webhook_secrets_encrypted))

    @webhook_secrets.setter
    def webhook_secrets(self, values: list[str]) -> None:
        self.webhook_secrets_encrypted = json.dumps([v for v in values if v])

    def api_url(self) -> str:
        return (self.rg_api_url or settings.REALGEEKS_API_URL).rstrip("/")

    def grant_url(self) -> Optional[str]:
        """The RG page where a client grants this partner access to sites."""
        if not self.rg_company_id:
            return None
        return settings.REALGEEKS_GRANT_URL_TEMPLATE.format(company_id=self.rg_company_id)


def _hash_secret(secret: str) -> str:
    # SHA-256, not a slow password hash: the secret is 32 random bytes, so there is nothing to
    # brute-force, and the hash runs on every API request.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def usable(self) -> "ApiKeyQuerySet":
        return self.filter(revoked_at__isnull=True, partner__is_active=True)

    def usable_by_id(self, key_id: str) -> Optional["ApiKey"]:
        """The usable key with this id and its partner, secret unchecked (see `secret_matches`)."""
        return (
            self.usable()
            .select_related("partner")
            # The partner's secrets are for workers talking to RG; decrypting them (an HMAC and
            # an AES pass each) on every API request would be wasted work.
            .defer("partner__rg_password", "partner__webhook_secrets_encrypted")
            .filter(key_id=key_id)
            .first()
        )

    def authenticate(self, key_id: str, secret: str) -> Optional["ApiKey"]:
        """The usable key with this id and secret, or None."""
        key = self.usable_by_id(key_id)
        return key if key is not None and key.secret_matches(secret) else None


class ApiKey(models.Model):
    """A credential for the partner's own products to call the portal (HTTP Basic)."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="api_keys")
    key_id = models.CharField(max_length=40, unique=True, help_text="Public half: the HTTP Basic username.")
    secret_hash = models.CharField(max_length=64, help_text="SHA-256 of the secret; the secret is shown once.")
    label = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.key_id} ({self.partner})"

    @classmethod
    def new(cls, *, partner: Partner, label: str = "") -> tuple["ApiKey", str]:
        """An unsaved key and its secret; the secret exists nowhere else once this returns."""
        secret = secrets.token_urlsafe(32)
        key = cls(
            partner=partner,
            key_id=f"pk_{secrets.token_hex(8)}",
            secret_hash=_hash_secret(secret),
            label=label,
        )
        return key, secret

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def secret_matches(self, secret: str) -> bool:
        """Whether `secret` is this key's, compared in constant time."""
        return hmac.compare_digest(self.secret_hash, _hash_secret(secret))


class SiteQuerySet(models.QuerySet["Site"]):
    def for_partner(self, partner: Partner) -> "SiteQuerySet":
        return self.filter(partner=partner)

    def sendable(self) -> "SiteQuerySet":
        """Sites the partner may send to now. Doubtful still sends: RG decides, and says 401."""
        return self.filter(status__in=[Site.Status.ACTIVE, Site.Status.DOUBTFUL])


class Site(models.Model):
    """One RG client site and the state of its grant to one partner."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACTIVE = "active", "Active"
        DOUBTFUL = "doubtful", "Doubtful (RG answered 401)"
        REVOKED = "revoked", "Revoked"

    class Source(models.TextChoices):
        MANUAL = "manual", "Granted by staff"
        COMMAND = "command", "Granted by command"
        EMAIL = "email", "Grant email"
        CALLBACK = "callback", "Destination callback"
        API = "api", "First seen in a pushed lead"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="sites")
    site_uuid = models.UUIDField()
    name = models.CharField(max_length=200, blank=True)
    domain = models.CharField(max_length=253, blank=True)
    rg_partner_id = models.CharField(max_length=200, blank=True, help_text="partner_id from RG's callback.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    source = models.CharField(max_length=16, choices=Source.choices, help_text="How the grant arrived.")
    granted_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    created = models.DateTimeField(default=timezone.now)
    # The delivery circuit breaker (leads.circuit): consecutive 5xx answers and timeouts from RG
    # for this site. At DELIVERY_CIRCUIT_FAILURES the circuit opens: nothing is sent until
    # `circuit_open_until`, then one probe; its answer closes the circuit or re-opens it.
    circuit_failures = models.PositiveIntegerField(default=0)
    circuit_opened_at = models.DateTimeField(null=True, blank=True)
    circuit_open_until = models.DateTimeField(null=True, blank=True)
    circuit_last_error = models.CharField(max_length=500, blank=True)

    objects = SiteQuerySet.as_manager()

    class Meta:
        ordering = ["partner", "name", "site_uuid"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "site_uuid"], name="site_unique_per_partner"),
        ]

    def __str__(self) -> str:
        return self.name or self.domain or str(self.site_uuid)

    @property
    def is_sendable(self) -> bool:
        return self.status in (self.Status.ACTIVE, self.Status.DOUBTFUL)

    @property
    def circuit_is_open(self) -> bool:
        """Open (or probing): deliveries to this site wait; see leads.circuit."""
        return self.circuit_opened_at is not None


class SiteStatusChange(models.Model):
    """One step in a site's grant history, with what caused it."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=16, choices=Site.Status.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=Site.Status.choices)
    source = models.CharField(max_length=16, choices=Site.Source.choices)
    note = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    webhook_event = models.ForeignKey(
        "grants.WebhookEvent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="status_changes",
        help_text="The Destination callback that caused this change, if one did.",
    )
    grant_email = models.ForeignKey(
        "grants.GrantEmail",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="status_changes",
        help_text="The grant email that caused this change, if one did.",
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.site}: {self.from_status or '-'} -> {self.to_status}"


class WebhookEventQuerySet(models.QuerySet["WebhookEvent"]):
    def stuck(self, *, received_before: datetime, claimed_before: datetime) -> "WebhookEventQuerySet":
        """Events a lost broker message or a killed worker left unprocessed."""
        return self.filter(
            models.Q(state=WebhookEvent.State.RECEIVED, received_at__lt=received_before)
            | models.Q(state=WebhookEvent.State.PROCESSING, claimed_at__lt=claimed_before)
        )


class WebhookEvent(models.Model):
    """One signed Destination callback from RG, stored as received before it is processed."""

    class State(models.TextChoices):
        RECEIVED = "received", "Received, waiting to be processed"
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Kept, nothing to do"
        FAILED = "failed", "Processing failed"
        INVALID = "invalid", "Signed, but the body is not a JSON object"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # webhook_event_unique_body and webhook_event_partner_recv begin with it; an index of its own
    # would cost every callback a write.
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="webhook_events", db_index=False)
    received_at = models.DateTimeField(default=timezone.now)
    remote_addr = models.CharField(max_length=45, blank=True)
    action = models.CharField(
        max_length=64, blank=True, help_text="The signed body's action; X-Lead-Router-Action only where it has none."
    )
    body = models.BinaryField(help_text="The exact bytes RG signed.")
    body_pruned_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When RETENTION_CALLBACK_BODY_DAYS pruned the body (it now says so); the digest, action, site, "
        "lead id and state are kept.",
    )
    body_sha256 = models.CharField(
        max_length=64, help_text="Replays are recognised by partner and this alone: one signed body, one event."
    )
    headers = models.JSONField(default=dict, help_text="Request headers, credentials redacted.")
    timestamp_raw = models.CharField(max_length=64, blank=True, help_text="X-Lead-Router-Timestamp as sent.")
    timestamp = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When it happened, to the microsecond: the body's signed time, else the header's within bounds.",
    )
    timestamp_ns = models.BigIntegerField(
        null=True, blank=True, help_text="The same time in nanoseconds since the epoch: orders events."
    )
    warning = models.TextField(
        blank=True, help_text="What the unsigned headers said that was not followed (an action, a time)."
    )
    site_uuid = models.UUIDField(null=True, blank=True)
    lead_id = models.UUIDField(null=True, blank=True, help_text="The body's id, normalised (RG may drop the dashes).")
    is_valid = models.BooleanField(default=True, help_text="False when the signed body is not a JSON object.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVED)
    error = models.TextField(blank=True, help_text="Why the last processing attempt failed, or why it was ignored.")
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookEventQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            # The webhook view's replay check: the same signed body is stored once, whatever the
            # unsigned headers beside it say, so it can never do two different things.
            models.UniqueConstraint(fields=["partner", "body_sha256"], name="webhook_event_unique_body"),
        ]
        indexes = [
            # The webhook_events_requeue beat task looks for events stuck in these states.
            models.Index(fields=["state", "received_at"], name="webhook_event_state_received"),
            # The callbacks page lists one partner's newest events first.
            models.Index(fields=["partner", "-received_at"], name="webhook_event_partner_recv"),
            # A lead's page lists RG's newest callbacks about that lead. Partial: most callbacks
            # (user and site events) name no lead and need not pay for this index.
            models.Index(
                fields=["partner", "lead_id", "-received_at"],
                name="webhook_event_lead_recv",
                condition=models.Q(lead_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action or '(no action)'} {self.received_at:%Y-%m-%d %H:%M:%S} ({self.state})"

    @property
    def body_text(self) -> str:
        return bytes(self.body).decode("utf-8", errors="replace")

    def order_key(self) -> int:
        """Nanoseconds that order this event among others: when it happened (see `timestamp`),
        else when it arrived."""
        if self.timestamp_ns is not None:
            return self.timestamp_ns
        return int(self.received_at.timestamp()) * 1_000_000_000 + self.received_at.microsecond * 1000


class WebhookRejection(models.Model):
    """Callbacks refused for a missing or wrong signature, counted per partner for staff.

    Nothing of a refused body is kept: an attacker must not be able to fill the database.
    """

    partner = models.OneToOneField(Partner, on_delete=models.CASCADE, related_name="webhook_rejection")
    count = models.PositiveBigIntegerField(default=0)
    last_reason = models.CharField(max_length=200, blank=True)
    last_remote_addr = models.CharField(max_length=45, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.partner}: {self.count} rejected"


class InboundLead(models.Model):
    """The latest state of one lead on one site, as RG's callbacks described it."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="inbound_leads")
    site_uuid = models.UUIDField()
    lead_id = models.UUIDField()
    details = models.JSONField(default=dict, help_text="Lead fields, merged field by field; newest event wins.")
    detail_times = models.JSONField(
        default=dict, help_text="Per field, the timestamp (ns) of the event that last set or unset it."
    )
    activities = models.JSONField(default=list, help_text="Activities RG reported, oldest first.")
    is_potential_seller = models.BooleanField(default=False)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_event = models.ForeignKey(WebhookEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_event_ns = models.BigIntegerField(default=0, help_text="Order key of the newest event applied.")

    class Meta:
        ordering = ["-first_seen_at", "-id"]
        constraints = [
            # Callback processing finds the lead by these three.
            models.UniqueConstraint(fields=["partner", "site_uuid", "lead_id"], name="inbound_lead_unique"),
        ]

    def __str__(self) -> str:
        name = " ".join(str(self.details.get(k, "")) for k in ("first_name", "last_name")).strip()
        return name or str(self.details.get("email", "")) or str(self.lead_id)


class SiteAgent(models.Model):
    """One RG user (agent or lender) of a site, kept from user_updated / user_deleted callbacks."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="site_agents")
    site_uuid = models.UUIDField()
    user_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True)
    email = models.CharField(max_length=254, blank=True)
    role = models.CharField(max_length=32, blank=True)
    data = models.JSONField(default=dict, help_text="The User object as RG last sent it.")
    is_deleted = models.BooleanField(default=False)
    updated_ns = models.BigIntegerField(default=0, help_text="Order key of the newest event applied.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "user_id"]
        constraints = [
            # Callback processing finds the agent by these three.
            models.UniqueConstraint(fields=["partner", "site_uuid", "user_id"], name="site_agent_unique"),
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.user_id


class GrantEmail(models.Model):
    """One RG grant notification email (or text pasted by staff), kept raw with what was read from it."""

    class Status(models.TextChoices):
        GRANTED = "granted", "Sites read and granted"
        NEEDS_REVIEW = "needs_review", "Needs review"
        RESOLVED = "resolved", "Resolved by staff"
        DISMISSED = "dismissed", "Dismissed by staff"

    class Source(models.TextChoices):
        INBOUND = "inbound", "Inbound email webhook"
        IMAP = "imap", "Mailbox poll"
        IMPORT = "import", "Imported file"
        PASTE = "paste", "Pasted by staff"
        SANDBOX = "sandbox", "Sandbox"

    class SenderVerification(models.TextChoices):
        NOT_CHECKED = "not_checked", "Sender not checked"
        VERIFIED = "verified", "Sender verified"
        NOT_VERIFIED = "not_verified", "Sender not verified"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.CASCADE, related_name="grant_emails")
    source = models.CharField(max_length=16, choices=Source.choices)
    dedupe_key = models.CharField(
        max_length=255, unique=True, help_text="The Message-ID, or a hash of the message when it has none."
    )
    message_id = models.CharField(max_length=255, blank=True)
    subject = models.CharField(max_length=255, blank=True)
    sender = models.CharField(max_length=255, blank=True)
    sender_verification = models.CharField(
        max_length=16,
        choices=SenderVerification.choices,
        default=SenderVerification.NOT_CHECKED,
        help_text=(
            "Verified: a trusted receiving server's Authentication-Results showed DKIM or SPF passing for a "
            "GRANT_EMAIL_SENDER_DOMAINS domain aligned with From. The webhook and the mailbox grant only then."
        ),
    )
    sender_verification_detail = models.CharField(
        max_length=500, blank=True, help_text="What passed and which server checked it, or why it is not verified."
    )
    recipients = models.JSONField(default=list)
    raw = models.BinaryField(help_text="The message as received, cut at GRANT_EMAIL_STORE_MAX_BYTES.")
    raw_size = models.PositiveIntegerField(default=0, help_text="Size of the whole message in bytes.")
    raw_pruned_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When RETENTION_GRANT_EMAIL_DAYS pruned the raw message (it now says so); what the parser read, "
        "the sender and the status are kept.",
    )
    sites = models.JSONField(default=list, help_text="What the parser read: site_uuid, name and domain per site.")
    status = models.CharField(max_length=16, choices=Status.choices)
    review_reason = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            # The grant emails page lists messages needing review, newest first.
            models.Index(fields=["status", "-received_at"], name="grant_email_status_received"),
            # The grant emails page filtered to one partner.
            models.Index(fields=["partner", "-received_at"], name="grant_email_partner_received"),
        ]

    def __str__(self) -> str:
        return self.subject or self.message_id or f"grant email {self.public_id}"

    @property
    def raw_truncated(self) -> bool:
        return len(self.raw) < self.raw_size

    @property
    def raw_text(self) -> str:
        return bytes(self.raw).decode("utf-8", errors="replace")
