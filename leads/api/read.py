"""The read and act API: leads and their deliveries, retry and resend, sites. Partner-scoped:
an API key sees its partner, a signed-in staff user the partners they belong to."""

import uuid
from typing import Any

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException, NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grants.authentication import ApiKeyAuthentication
from grants.models import Site
from leads.api.access import HasApiKeyOrStaffSession, partners_for, person
from leads.api.negotiation import JsonOnly
from leads.api.pagination import AttemptsNewestFirst, DeliveriesNewestFirst, LeadsNewestFirst
from leads.api.serializers import (
    AttemptSerializer,
    DeliverySerializer,
    LeadDetailSerializer,
    LeadFilterSerializer,
    LeadSerializer,
    SiteSerializer,
)
from leads.history import attempts_newest_first, latest_attempts, latest_deliveries
from leads.models import Delivery, DeliveryAttempt, Lead, LeadQuerySet
from leads.staff_services import delivery_retry, lead_resend_checked
from partner_portal.csp import ApiPolicy


class ReadApiView(ApiPolicy, APIView):
    content_negotiation_class = JsonOnly
    # The key first: its WWW-Authenticate header is the one a 401 carries.
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [HasApiKeyOrStaffSession]


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
    pagination_class = LeadsNewestFirst

    def get_queryset(self) -> QuerySet[Lead]:
        filters = LeadFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return lead_search(_leads(self.request), filters.validated_data)


def lead_search(leads: LeadQuerySet, filters: dict[str, Any]) -> LeadQuerySet:
    return leads.filter_by(filters)


class LeadAmbiguous(APIException):
    # 409: the request is well formed, but the id names leads of several partners right now.
    status_code = status.HTTP_409_CONFLICT


PARTNER_PARAMETER = OpenApiParameter(
    "partner",
    str,
    description="Partner slug. Lead ids are unique per partner only: a caller who sees several partners "
    "names one when two of them hold the lead (409 otherwise).",
)
AMBIGUOUS = OpenApiResponse(
    description='The lead id belongs to leads of several partners the caller sees: `{"error": "..."}` '
    "names them; add ?partner=<slug>."
)


def _one_lead(request: Request, leads: LeadQuerySet, lead_id: str) -> Lead:
    """The caller's lead with this id, chosen by `?partner=<slug>` when given.

    Lead ids are unique per partner, not overall, so one id may name leads of two partners the
    caller sees: that is a 409 listing their slugs, never an arbitrary pick.
    """
    leads = leads.filter(lead_id=_uuid(lead_id, "lead"))
    slug = request.query_params.get("partner")
    if slug:
        leads = leads.filter(partner__slug=slug)
    found = list(leads[:2])
    if not found:
        raise NotFound(f"No lead {lead_id[:100]!r}" + (f" of partner {slug[:100]!r}." if slug else "."))
    if len(found) > 1:
        slugs = ", ".join(sorted(leads.values_list("partner__slug", flat=True)))
        raise LeadAmbiguous(
            f"Lead {found[0].lead_id} belongs to more than one partner ({slugs}): "
            "add ?partner=<slug> to say which one you mean."
        )
    return found[0]


def _lead(request: Request, lead_id: str) -> Lead:
    return _one_lead(request, _leads(request), lead_id)


def _deliveries(request: Request) -> QuerySet[Delivery]:
    return Delivery.objects.filter(lead__partner__in=partners_for(request))


def _delivery(deliveries: QuerySet[Delivery], delivery_id: str) -> Delivery:
    delivery = deliveries.filter(public_id=_uuid(delivery_id, "delivery")).first()
    if delivery is None:
        raise NotFound(f"No delivery {delivery_id[:100]!r}.")
    return delivery


def _with_latest_attempts(delivery: Delivery) -> Delivery:
    """The delivery again, as the API shows one: with its latest attempts."""
    return delivery.lead.deliveries.prefetch_related(latest_attempts()).get(pk=delivery.pk)


class LeadDetailView(ReadApiView):
    """The lead, its latest deliveries with their latest attempts, and links to the rest: a
    document bounded by LEAD_PAGE_DELIVERIES and LEAD_PAGE_ATTEMPTS however long the lead's history."""

    @extend_schema(parameters=[PARTNER_PARAMETER], responses={200: LeadDetailSerializer, 409: AMBIGUOUS})
    def get(self, request: Request, lead_id: str) -> Response:
        counted = Delivery.objects.filter(lead=OuterRef("pk")).order_by().values("lead").annotate(n=Count("pk"))
        leads = (
            _leads(request)
            .annotate(deliveries_total=Coalesce(Subquery(counted.values("n")), 0))
            .prefetch_related(latest_deliveries())
        )
        lead = _one_lead(request, leads, lead_id)
        return Response(LeadDetailSerializer(lead, context={"request": request}).data)


BAD_PAGE = OpenApiResponse(
    description="A cursor this API did not hand out, or a page_size that is not a whole number above 0: "
    '`{"error": "..."}`'
)


@extend_schema(
    parameters=[PARTNER_PARAMETER],
    responses={
        200: DeliverySerializer(many=True),
        400: BAD_PAGE,
        404: OpenApiResponse(description="No such lead among the caller's partners."),
        409: AMBIGUOUS,
    },
)
class LeadDeliveriesView(ReadApiView, generics.ListAPIView[Delivery]):
    """A lead's deliveries, newest first, each with its latest attempts."""

    serializer_class = DeliverySerializer
    pagination_class = DeliveriesNewestFirst

    def get_queryset(self) -> QuerySet[Delivery]:
        lead = _lead(self.request, self.kwargs["lead_id"])
        # Through the lead, so each delivery knows it without a join that would read its data.
        return lead.deliveries.prefetch_related(latest_attempts())


@extend_schema(
    responses={
        200: AttemptSerializer(many=True),
        400: BAD_PAGE,
        404: OpenApiResponse(description="No such delivery among the caller's partners."),
    }
)
class DeliveryAttemptsView(ReadApiView, generics.ListAPIView[DeliveryAttempt]):
    """A delivery's attempts, newest first."""

    serializer_class = AttemptSerializer
    pagination_class = AttemptsNewestFirst

    def get_queryset(self) -> QuerySet[DeliveryAttempt]:
        delivery = _delivery(_deliveries(self.request).only("pk"), self.kwargs["delivery_id"])
        return attempts_newest_first().filter(delivery=delivery)


class LeadResendView(ReadApiView):
    @extend_schema(parameters=[PARTNER_PARAMETER], request=None, responses={202: DeliverySerializer, 409: AMBIGUOUS})
    def post(self, request: Request, lead_id: str) -> Response:
        lead = _lead(request, lead_id)
        # Checked first: a lead known only from updates may lack what RG requires of a create.
        # A person's resend joins the audit trail; a product's key leaves no entry.
        delivery = lead_resend_checked(lead=lead, actor=person(request))
        body = DeliverySerializer(_with_latest_attempts(delivery), context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class DeliveryRetryView(ReadApiView):
    @extend_schema(request=None, responses={202: DeliverySerializer, 409: OpenApiTypes.OBJECT})
    def post(self, request: Request, delivery_id: str) -> Response:
        delivery = _delivery(_deliveries(request).select_related("lead"), delivery_id)
        delivery = delivery_retry(delivery=delivery, actor=person(request))
        body = DeliverySerializer(_with_latest_attempts(delivery), context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


@extend_schema(parameters=[OpenApiParameter("status", str, enum=Site.Status.values)])
class SiteListView(ReadApiView, generics.ListAPIView[Site]):
    serializer_class = SiteSerializer

    def get_queryset(self) -> QuerySet[Site]:
        sites = Site.objects.filter(partner__in=partners_for(self.request)).select_related("partner")
        wanted = self.request.query_params.get("status")
        return sites.filter(status=wanted) if wanted else sites
