"""The Destination URL a partner registers at RG: `/webhooks/realgeeks/{partner_slug}/`.

A plain Django view, because the signature covers the exact raw bytes. Cheap rejections
first, then the signature (constant time), then the request is stored and answered; the work
happens in a Celery task.

A slug that names no active partner is answered exactly as a bad signature, after the same
work (reading the body, an HMAC of it), so the webhook does not tell which partners exist.
"""

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from grants import callbacks, destination, metrics
from grants.models import Partner
from grants.process_cache import ProcessCache
from grants.signing import signature_matches
from partner_portal.csp import with_api_policy

logger = logging.getLogger(__name__)

# What a slug without an active partner is checked against: a secret nobody holds (a new one in
# each process), so its request costs the HMAC a partner's would and can never pass.
_NOBODYS_SECRETS = (secrets.token_hex(32),)
# A slug without an active partner is logged once per this many seconds, and at most
# _MISSES_LOGGED different ones at a time, so made-up slugs cannot flood the log.
MISS_LOG_SECONDS = 60.0
_MISSES_LOGGED = 100


@dataclass(frozen=True)
class _DestinationPartner:
    """What the webhook needs to know about the partner its URL names."""

    id: int
    is_active: bool
    secrets: tuple[str, ...] = field(repr=False)  # never in a log line, even by accident


def _partner_read(slug: str) -> Optional[_DestinationPartner]:
    # Reading a partner decrypts its secrets (an HMAC and an AES pass), too dear for every callback.
    partner = Partner.objects.only("pk", "is_active", "webhook_secrets_encrypted").filter(slug=slug).first()
    if partner is None:
        return None
    return _DestinationPartner(id=partner.pk, is_active=partner.is_active, secrets=tuple(partner.webhook_secrets))


# slug -> the partner as last read, at most PARTNER_CACHE_SECONDS ago in this process, so a
# deactivated partner or a rotated secret takes effect within that bound everywhere.
partners = ProcessCache(_partner_read, bound_setting="PARTNER_CACHE_SECONDS", models=(Partner,))


class _MissLog:
    """Logs a request for a slug without an active partner, once per slug and burst: an operator
    sees a misconfigured Destination URL, and nothing of the request but the slug and address."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logged: dict[str, float] = {}  # slug -> monotonic time it was last logged

    def note(self, slug: str, *, found: bool, remote_addr: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._logged.get(slug, -MISS_LOG_SECONDS) < MISS_LOG_SECONDS:
                return
            if len(self._logged) >= _MISSES_LOGGED:
                self._logged = {s: at for s, at in self._logged.items() if now - at < MISS_LOG_SECONDS}
                if len(self._logged) >= _MISSES_LOGGED:
                    return
            self._logged[slug] = now
        logger.warning(
            "Destination callback for %s slug %r from %s answered 401; is the URL at RG right?",
            "an inactive partner's" if found else "an unknown",
            slug[:100],
            remote_addr,
        )

    def forget(self) -> None:
        with self._lock:
            self._logged.clear()


_misses = _MissLog()


def partners_forget() -> None:
    """Forget the partners this process has read, and the unknown slugs it has logged (tests)."""
    partners.forget()
    _misses.forget()


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


@csrf_exempt
@with_api_policy
def realgeeks_destination(request: HttpRequest, partner_slug: str) -> HttpResponse:
    limit: int = settings.GRANT_WEBHOOK_MAX_BODY_BYTES
    if request.method != "POST":
        # 405: RG only ever POSTs; anything else is a probe or a misconfigured client.
        response = _error("Only POST is accepted.", 405)
        response["Allow"] = "POST"
        return response
    # Not cached when absent: a partner added in another process must be found at once, and a
    # made-up slug costs one indexed SELECT, as a partner does when its cache entry has expired.
    partner = partners.get(partner_slug)
    if _declared_length(request) > limit:
        # 413 before reading a byte; the capped read below catches a body without a length.
        return _error(f"Body larger than {limit} bytes.", 413)
    body = request.read(limit + 1)
    if len(body) > limit:
        return _error(f"Body larger than {limit} bytes.", 413)

    remote_addr = request.META.get("REMOTE_ADDR", "")
    signature = request.headers.get(destination.SIGNATURE_HEADER, "")
    active = partner if partner is not None and partner.is_active else None
    verified = bool(signature) and signature_matches(body, signature, active.secrets if active else _NOBODYS_SECRETS)
    if active is None or not verified:
        # 401 and nothing kept but a count: RG documents 401 for a bad signature, and a forged
        # request must not be able to store anything. A slug without an active partner gets the
        # same 401 and message (not a 404), so probing slugs tells nothing; it is logged instead.
        reason = f"{'Missing' if not signature else 'Invalid'} {destination.SIGNATURE_HEADER}."
        if active is not None:
            callbacks.webhook_rejection_record(partner_id=active.id, reason=reason, remote_addr=remote_addr)
        else:
            _misses.note(partner_slug, found=partner is not None, remote_addr=remote_addr)
        return _error(reason, 401)

    received = callbacks.webhook_event_receive(
        partner_id=active.id, body=body, headers=request.headers, remote_addr=remote_addr
    )
    metrics.CALLBACKS_RECEIVED.labels(partner_slug).inc()
    if not received.is_valid:
        # 400, as RG's own API answers a body that is not JSON; the request is kept for staff.
        return _error("Body is not a JSON object.", 400)
    # 200 at once, replay or not: RG retries anything else. The row is committed by now. A
    # constant body, not JSON-encoded for every callback.
    return HttpResponse(b"{}", content_type="application/json")
