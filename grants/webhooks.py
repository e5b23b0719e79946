"""The Destination URL a partner registers at RG: `/webhooks/realgeeks/{partner_slug}/`.

A plain Django view, because the signature covers the exact raw bytes. Cheap rejections
first, then the signature (constant time), then the request is stored and answered; the work
happens in a Celery task.
"""

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from grants import callbacks, destination
from grants.models import Partner
from grants.signing import signature_matches


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
    partner = Partner.objects.filter(slug=partner_slug, is_active=True).first()
    if partner is None:
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
    if not signature or not signature_matches(body, signature, partner.webhook_secrets):
        # 401 and nothing kept but a count: RG documents 401 for a bad signature, and a forged
        # request must not be able to store anything.
        reason = f"{'Missing' if not signature else 'Invalid'} {destination.SIGNATURE_HEADER}."
        callbacks.webhook_rejection_record(partner=partner, reason=reason, remote_addr=remote_addr)
        return _error(reason, 401)

    event = callbacks.webhook_event_receive(
        partner=partner, body=body, headers=request.headers, remote_addr=remote_addr
    )
    if not event.is_valid:
        # 400, as RG's own API answers a body that is not JSON; the request is kept for staff.
        return _error("Body is not a JSON object.", 400)
    # 200 at once, replay or not: RG retries anything else.
    return JsonResponse({})
