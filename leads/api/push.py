"""The push API: RG's Incoming Leads API, path for path, so RG's client libraries work by
changing only the host. Same success codes and bodies as RG (`201 {}`, `200 {}`), same errors.

Choices where RG cannot be copied (documented in the OpenAPI descriptions too):
- A site this partner has never seen is accepted; its deliveries are held until it is granted.
- An update or activities for a lead id the portal never saw is accepted and forwarded: its
  create may have gone to RG directly, before the partner switched to the portal.
- A lead id already used on another site is refused: 422 on a create, 404 on an update.
- A push repeating one accepted for the same lead within PUSH_IDEMPOTENCY_SECONDS (same
  operation, body and destinations), or sending an `Idempotency-Key` this API key already used
  for the same request, gets the first answer and makes no second delivery
  (`Idempotent-Replayed: true`); the same key with a different request is a 422.
- Activities are capped per request (PUSH_MAX_ACTIVITIES) and per lead (LEAD_MAX_ACTIVITIES).
"""

import uuid
from typing import Any, Optional, cast

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ParseError, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grants.authentication import ApiKeyAuthentication
from grants.models import ApiKey
from leads import metrics
from leads.agents import AgentsUnavailable, users_for
from leads.api.access import HasApiKey
from leads.api.errors import PayloadTooLarge, UpstreamError
from leads.api.negotiation import JsonOnly
from leads.rg_operations import OPERATIONS, RealGeeksOperation
from leads.services import lead_push
from leads.validation import parse_json
from partner_portal.csp import ApiPolicy

# The Stripe and Svix convention: a product's retry with the same key gets the first answer.
IDEMPOTENCY_KEY = "Idempotency-Key"
# RG's Ruby client names, on a create, which of the site's Destinations get the lead.
ROUTER_DESTINATIONS = "X-Router-Destinations"

ERRORS = {
    400: OpenApiResponse(description='Body is not valid JSON: `{"error": "..."}`'),
    401: OpenApiResponse(description="Missing or wrong API key (HTTP Basic: key id, secret)."),
    413: OpenApiResponse(description="Body larger than PUSH_MAX_BODY_BYTES."),
    422: OpenApiResponse(
        description="A field did not validate, a limit was reached, or an Idempotency-Key was reused for another "
        'request; the message names it: `{"error": "..."}`'
    ),
}


def path_uuid(value: Optional[str], what: str) -> uuid.UUID:
    """A UUID from the URL; anything else is a 404 in RG's error shape."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"{what} {str(value)[:100]!r} is not a valid UUID.") from None


def request_body(request: Request) -> bytes:
    """The raw body, refused with 413 past PUSH_MAX_BODY_BYTES before it is read when possible."""
    limit = settings.PUSH_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        # Django itself would fail on it later with a 500; a proxy normally refuses it first.
        raise ParseError("Invalid Content-Length header.") from None
    if declared > limit:
        raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
    try:
        body = request.body
    except RequestDataTooBig:
        raise PayloadTooLarge(f"Request body is larger than {limit} bytes.") from None
    if len(body) > limit:
        raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
    return body


class PushView(ApiPolicy, APIView):
    content_negotiation_class = JsonOnly
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]
    # The body is parsed here with leads.validation.parse_json, so a bad body gets RG's 400.
    parser_classes: list[Any] = []
    metadata_class = None  # no OPTIONS description: RG has none, and it would bypass RG's shape
    operation: str = ""
    success_status: int = status.HTTP_200_OK

    def submit(self, request: Request, site_uuid: str, lead_id: Optional[str] = None) -> HttpResponse:
        assert isinstance(request.auth, ApiKey)
        site = path_uuid(site_uuid, "Site")
        lead = path_uuid(lead_id, "Lead") if lead_id is not None else None
        idempotency_key = header_text(request, IDEMPOTENCY_KEY, 255)
        destinations = header_text(request, ROUTER_DESTINATIONS, 500)
        data = parse_json(request_body(request))
        pushed = lead_push(
            partner=request.auth.partner,
            site_uuid=site,
            operation=self.operation,
            data=data,
            lead_id=lead,
            api_key=request.auth,
            idempotency_key=idempotency_key,
            router_destinations=destinations,
        )
        metrics.PUSHES_ACCEPTED.labels(request.auth.partner.slug, self.operation).inc()
        # RG's `{}`, not rendered by DRF for every push: a constant body needs no renderer.
        response = HttpResponse(b"{}", status=self.success_status, content_type="application/json")
        if pushed.repeated:
            # Stripe's name for it: the product can tell its retry was recognised.
            response["Idempotent-Replayed"] = "true"
        return response


def header_text(request: Request, name: str, limit: int) -> str:
    """A header's value: printable ASCII, at most `limit` characters; absent is ""."""
    value = request.META.get(f"HTTP_{name.upper().replace('-', '_')}", "")
    if len(value) > limit or not value.isascii() or not value.isprintable():
        raise ParseError(f"Header {name} must be at most {limit} printable ASCII characters.")
    return value.strip()


HEADERS = [
    OpenApiParameter(
        IDEMPOTENCY_KEY,
        str,
        OpenApiParameter.HEADER,
        description="Optional, up to 255 printable ASCII characters, scoped to the API key. A retry with the "
        "same key and request gets the first answer (`Idempotent-Replayed: true`) and no second delivery; "
        "the same key with a different request is a 422. Without a key, the same request for the same lead "
        "within PUSH_IDEMPOTENCY_SECONDS is recognised too.",
    ),
    OpenApiParameter(
        ROUTER_DESTINATIONS,
        str,
        OpenApiParameter.HEADER,
        description="Creates only, as RG's Ruby client sends it: which of the site's Destinations get the lead "
        "(`a,b`). Kept with the delivery and forwarded to RG.",
    ),
]


def _schema(summary: str, success: int) -> Any:
    return extend_schema(
        summary=summary,
        request=OpenApiTypes.OBJECT,
        parameters=HEADERS,
        responses={
            success: OpenApiResponse(description="Accepted: `{}`"),
            **ERRORS,
            429: OpenApiResponse(description="Too many failed API key attempts from this address; see Retry-After."),
        },
    )


def push_view(op: RealGeeksOperation) -> type[PushView]:
    """The view of one operation of leads.rg_operations: RG's method, RG's success status, and
    the operation's summary in the schema; leads.urls serves it under RG's path."""

    @_schema(op.summary, op.success_status)
    def handler(self: PushView, request: Request, site_uuid: str, lead_id: Optional[str] = None) -> HttpResponse:
        return self.submit(request, site_uuid, lead_id)

    name = "".join(word.capitalize() for word in op.name.split("_")) + "View"
    attributes = {"operation": op.name, "success_status": op.success_status, op.method.lower(): handler}
    return cast(type[PushView], type(name, (PushView,), attributes))


# A class per operation, as DRF and drf-spectacular want one per path; all they know comes from the table.
PUSH_VIEWS = {name: push_view(op) for name, op in OPERATIONS.items()}


class UsersView(ApiPolicy, APIView):
    content_negotiation_class = JsonOnly
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]

    @extend_schema(
        summary="The site's agents and lenders, from RG (cached briefly)",
        responses={
            200: OpenApiTypes.OBJECT,
            401: ERRORS[401],
            403: OpenApiResponse(description="RG refused the partner's credentials for this site."),
            502: OpenApiResponse(description="RG failed or did not answer."),
        },
    )
    def get(self, request: Request, site_uuid: str) -> Response:
        assert isinstance(request.auth, ApiKey)
        try:
            return Response(users_for(request.auth.partner, path_uuid(site_uuid, "Site")))
        except AgentsUnavailable as exc:
            # RG's 401 means the partner's RG credentials or grant, not the caller's key: never
            # pass it through as a 401, or the product would think its portal key is wrong.
            if exc.refused:
                raise PermissionDenied(exc.message) from None
            if exc.missing:
                raise NotFound(exc.message) from None
            raise UpstreamError(exc.message) from None
