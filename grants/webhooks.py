"""The Destination URL a partner registers at RG: `/webhooks/realgeeks/{partner_slug}/`.

A plain Django view, because the signature covers the exact raw bytes. Cheap rejections
first, then the signature (constant time), then the request is stored and answered; the work
happens in a Celery task.
"""

from dataclasses import dataclass, field
from typing import Optional

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from grants import callbacks, destination
from grants.models import Partner
from grants.process_cache import ProcessCache
from grants.signing import signature_matches


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


def partners_forget() -> None:
    """Forget the partners this process has read (tests)."""
    partners.forget()


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


@csrf_exempt
def realgeeks_destination(request: HttpRequest, partner_slug: str) -> JsonResponse:
    limit: int = settings.GRANT_WEBHOOK_MAX_BODY_BYTES
    if request.method != "POST":
        # 405: RG only ever POSTs; anything else is a probe or a misconfigured client.
        response = _error("Only POST is accepted.", 405)
        response["Allow"] = "POST"
        return response
    partner = partners.get(partner_slug)
    if partner is None or not partner.is_active:
        # 404 rather than 401: there is no secret to check a signature against.
        return _error("Unknown destination.", 404)
    if _declared_length(request) > limit:
        # 413 before reading a byte; the capped read below catches a body without a length.
        return _error(f"Body larger than {limit} bytes.", 413)
    body = request.read(limit + 1)
    if len(body) > limit:
        return _error(f"Body larger than {limit} bytes.", 413)

    remote_addr = request.META.get("REMOTE_ADDR", "")
    signature = request.headers.get(destination.SIGNATURE_HEADER, "")
    if not signature or not signature_matches(body, signature, partner.secrets):
        # 401 and nothing kept but a count: RG documents 401 for a bad signature, and a forged
        # request must not be able to store anything.
        reason = f"{'Missing' if not signature else 'Invalid'} {destination.SIGNATURE_HEADER}."
        callbacks.webhook_rejection_record(partner_id=partner.id, reason=reason, remote_addr=remote_addr)
        return _error(reason, 401)

    received = callbacks.webhook_event_receive(
        partner_id=partner.id, body=body, headers=request.headers, remote_addr=remote_addr
    )
    if not received.is_valid:
        # 400, as RG's own API answers a body that is not JSON; the request is kept for staff.
        return _error("Body is not a JSON object.", 400)
    # 200 at once, replay or not: RG retries anything else. The row is committed by now.
    return JsonResponse({})
