"""The read and act API: leads and their deliveries, retry and resend, sites. Partner-scoped:
an API key sees its partner, a signed-in staff user the partners they belong to."""

import uuid
from typing import Any

from django.db import transaction
from django.db.models import Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grants.authentication import ApiKeyAuthentication
from grants.models import Site
from leads.api.access import HasApiKeyOrStaffSession, partners_for, person
from leads.api.negotiation import JsonOnly
from leads.api.serializers import (
    DeliverySerializer,
    LeadDetailSerializer,
    LeadFilterSerializer,
    LeadSerializer,
    SiteSerializer,
)
from leads.models import Delivery, DeliveryAttempt, Lead, LeadQuerySet
from leads.services import delivery_retry, lead_resend
from portal.audit import audit_record


class ReadApiView(APIView):
    content_negotiation_class = JsonOnly
    # The key first: its WWW-Authenticate header is the one a 401 carries.
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [HasApiKeyOrStaffSession]


class NewestFirst(CursorPagination):
    """Keyset pages: stable under inserts, and each page is one index range scan."""

    ordering = ("-created", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"No {what} {value[:100]!r}.") from None


def _leads(request: Request) -> LeadQuerySet:
    return Lead.objects.filter(partner__in=partners_for(request)).select_related("site", "partner")


@extend_schema(parameters=[LeadFilterSerializer])
class LeadListView(ReadApiView, generics.ListAPIView[Lead]):
    serializer_class = LeadSerializer
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[Lead]:
        filters = LeadFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return lead_search(_leads(self.request), filters.validated_data)


def lead_search(leads: LeadQuerySet, filters: dict[str, Any]) -> LeadQuerySet:
    return leads.filter_by(filters)


class LeadDetailView(ReadApiView):
    @extend_schema(responses=LeadDetailSerializer)
    def get(self, request: Request, lead_id: str) -> Response:
        attempts: Prefetch[Any, Any, Any] = Prefetch(
            "attempts", queryset=DeliveryAttempt.objects.select_related("actor").order_by("number")
        )
        deliveries: Prefetch[Any, Any, Any] = Prefetch(
            "deliveries", queryset=Delivery.objects.prefetch_related(attempts).order_by("sequence")
        )
        lead = _leads(request).prefetch_related(deliveries).filter(lead_id=_uuid(lead_id, "lead")).first()
        if lead is None:
            raise NotFound(f"No lead {lead_id[:100]!r}.")
        return Response(LeadDetailSerializer(lead).data)


class LeadResendView(ReadApiView):
    @extend_schema(request=None, responses={202: DeliverySerializer})
    def post(self, request: Request, lead_id: str) -> Response:
        lead = _leads(request).filter(lead_id=_uuid(lead_id, "lead")).first()
        if lead is None:
            raise NotFound(f"No lead {lead_id[:100]!r}.")
        with transaction.atomic():
            delivery = lead_resend(lead=lead, actor=person(request))
            _audit(request, "lead.resend", lead, partner=lead.partner, after={"delivery": delivery.public_id})
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class DeliveryRetryView(ReadApiView):
    @extend_schema(request=None, responses={202: DeliverySerializer, 409: OpenApiTypes.OBJECT})
    def post(self, request: Request, delivery_id: str) -> Response:
        delivery = (
            Delivery.objects.filter(lead__partner__in=partners_for(request), public_id=_uuid(delivery_id, "delivery"))
            .select_related("lead")
            .first()
        )
        if delivery is None:
            raise NotFound(f"No delivery {delivery_id[:100]!r}.")
        with transaction.atomic():
            before = {"status": delivery.status, "attempt_count": delivery.attempt_count}
            delivery = delivery_retry(delivery=delivery, actor=person(request))
            _audit(request, "delivery.retry", delivery, partner=delivery.lead.partner, before=before)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


def _audit(request: Request, action: str, obj: Any, *, partner: Any, **snapshots: Any) -> None:
    """Staff actions join the audit trail (in the action's transaction); a product's key does not."""
    if person(request) is not None:
        audit_record(actor=person(request), action=action, obj=obj, partner=partner, **snapshots)


@extend_schema(parameters=[OpenApiParameter("status", str, enum=Site.Status.values)])
class SiteListView(ReadApiView, generics.ListAPIView[Site]):
    serializer_class = SiteSerializer

    def get_queryset(self) -> QuerySet[Site]:
        sites = Site.objects.filter(partner__in=partners_for(self.request)).select_related("partner")
        wanted = self.request.query_params.get("status")
        return sites.filter(status=wanted) if wanted else sites
