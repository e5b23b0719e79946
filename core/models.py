"""Cross-cutting records: the staff audit trail and worker liveness."""

import json
from typing import Any, Optional

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """One staff action: who, when, what, on which object, and its state before and after."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    partner = models.ForeignKey(
        "grants.Partner", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    action = models.CharField(max_length=64, help_text="e.g. lead.resend, site.grant, api_key.revoke")
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        # Moved from the portal app (core/migrations/0001_initial.py); the table kept its name.
        db_table = "portal_auditentry"
        ordering = ["-created", "-id"]
        indexes = [
            # The audit page lists one partner's newest entries first.
            models.Index(fields=["partner", "-created"], name="audit_partner_created"),
        ]

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_type}:{self.object_id}"

    def changes(self) -> list[tuple[str, Optional[str], Optional[str]]]:
        """(field, before, after) for every field the entry mentions, values as display text."""
        before, after = self.before or {}, self.after or {}
        fields = dict.fromkeys([*before, *after])
        return [(field, _display(before.get(field)), _display(after.get(field))) for field in fields]


def _display(value: Any) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


class WorkerHeartbeat(models.Model):
    """Written by a periodic Celery task, so /healthz and staff can see the workers are alive."""

    hostname = models.CharField(max_length=200, unique=True)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "portal_workerheartbeat"  # moved from the portal app, as AuditEntry

    def __str__(self) -> str:
        return f"{self.hostname} at {self.last_seen:%Y-%m-%d %H:%M:%S}"
