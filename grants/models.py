"""Partners, their API keys and the Real Geeks sites that granted them access."""

import hashlib
import hmac
import json
import secrets
import uuid
from typing import Optional

from django.conf import settings
from django.db import models
from django.utils import timezone

from grants.fields import EncryptedTextField


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

    def __str__(self) -> str:
        return self.name

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

    def authenticate(self, key_id: str, secret: str) -> Optional["ApiKey"]:
        """The usable key with this id and secret, or None. Compares in constant time."""
        key = self.usable().select_related("partner").filter(key_id=key_id).first()
        if key is None or not hmac.compare_digest(key.secret_hash, _hash_secret(secret)):
            return None
        return key


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
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.site}: {self.from_status or '-'} -> {self.to_status}"
