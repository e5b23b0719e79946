"""State of the local Real Geeks stand-in: accounts, leads it received, its request log, faults."""

import hashlib
import hmac

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
