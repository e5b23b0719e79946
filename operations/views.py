"""GET /metrics, for Prometheus: the bearer token in METRICS_TOKEN, compared in constant time."""

import hashlib
import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from operations.metrics import exposition


def _digest(token: str) -> bytes:
    # Compared as digests: equal lengths, so the comparison's time says nothing of a token's length.
    return hashlib.sha256(token.encode()).digest()


def token_matches(presented: str, tokens: list[str]) -> bool:
    """Whether `presented` is one of `tokens`, each compared in constant time."""
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(_digest(presented), _digest(token))
    return matched


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    tokens: list[str] = settings.METRICS_TOKENS
    if not tokens:
        # 404, as if there were no such page: metrics are off until a token is set.
        raise Http404
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token_matches(presented.strip(), tokens):
        # 401 with the challenge RFC 6750 names, in the API's error shape.
        response = JsonResponse({"error": "Missing or wrong bearer token (METRICS_TOKEN)."}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = exposition(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
