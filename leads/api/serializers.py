"""Input and output shapes of the read and act API. No logic beyond shaping."""

from typing import Any, Optional
from urllib.parse import urlencode

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from grants.models import Site
from leads.api.pagination import AttemptsNewestFirst, DeliveriesNewestFirst, page_after
from leads.circuit import circuit_state
from leads.history import LATEST_ATTEMPTS, LATEST_DELIVERIES, REQUEST_BODY_HEAD, attempts_of, deliveries_of
from leads.models import Delivery, DeliveryAttempt, Lead, Operation


class LeadFilterSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=Lead.Status.choices, required=False)
    site = serializers.UUIDField(required=False, help_text="Site UUID.")
    partner = serializers.SlugField(required=False, help_text="Partner slug (staff who see several).")
    operation = serializers.ChoiceField(
        choices=Operation.choices, required=False, help_text="Leads with at least one delivery of this kind."
    )
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    http_status = serializers.IntegerField(
        required=False, min_value=100, max_value=599, help_text="RG's last HTTP status for the lead."
    )
    q = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Search: email, name or phone (contains), or the exact lead id or site UUID.",
    )


class CircuitSerializer(serializers.Serializer[Any]):
    """A site's delivery circuit breaker (leads.circuit), read from the Site it is given."""

    state = serializers.ChoiceField(
        choices=["closed", "open", "probing"],
        help_text="closed: deliveries go out. open: RG kept failing, so nothing is sent until retry_at. "
        "probing: retry_at has passed and one delivery is testing the site.",
    )
    consecutive_failures = serializers.IntegerField(
        help_text="5xx answers and timeouts from RG in a row for this site; a success resets it."
    )
    opened_at = serializers.DateTimeField(allow_null=True, help_text="When the circuit opened; null when closed.")
    retry_at = serializers.DateTimeField(allow_null=True, help_text="When the next probe may go out; null when closed.")
    last_error = serializers.CharField(allow_blank=True, help_text="What RG's last failure said; empty when closed.")

    def to_representation(self, instance: Site) -> dict[str, Any]:
        return super().to_representation(circuit_state(instance))


class SiteSerializer(serializers.ModelSerializer[Site]):
    partner: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    circuit = CircuitSerializer(source="*", read_only=True)

    class Meta:
        model = Site
        fields = ["site_uuid", "partner", "name", "domain", "status", "source", "granted_at", "created", "circuit"]


class AttemptSerializer(serializers.ModelSerializer[DeliveryAttempt]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    actor: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="username", read_only=True)
    # Attempts are read with leads.history.attempts_newest_first, which cuts the body in the database.
    request_body = serializers.CharField(
        source=REQUEST_BODY_HEAD,
        read_only=True,
        help_text="The first ATTEMPT_BODY_MAX_CHARS characters of the body sent; the whole body is the "
        "delivery's payload.",
    )

    class Meta:
        model = DeliveryAttempt
        fields = [
            "id",
            "number",
            "trigger",
            "actor",
            "started",
            "duration_ms",
            "request_method",
            "request_url",
            "request_body",
            "response_status",
            "response_body",
            "error",
            "outcome",
            "next_attempt_at",
        ]


class DeliverySerializer(serializers.ModelSerializer[Delivery]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    lead_id = serializers.UUIDField(source="lead.lead_id", read_only=True)
    attempts = AttemptSerializer(
        source=LATEST_ATTEMPTS,
        many=True,
        read_only=True,
        help_text="The latest LEAD_PAGE_ATTEMPTS attempts, newest first; attempts_next pages through the older ones.",
    )
    attempts_next = serializers.SerializerMethodField(
        help_text="The page of older attempts (GET /api/deliveries/{id}/attempts/); null when none are left out."
    )

    class Meta:
        model = Delivery
        fields = [
            "id",
            "lead_id",
            "sequence",
            "operation",
            "status",
            "origin",
            "payload",
            "attempt_count",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "created",
            "attempts",
            "attempts_next",
        ]
        extra_kwargs = {"attempt_count": {"help_text": "Attempts made, all of them; attempts holds the latest."}}

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_attempts_next(self, delivery: Delivery) -> Optional[str]:
        shown = attempts_of(delivery)
        # Attempts are numbered from 1: older ones exist while the oldest shown is not the first.
        if not shown or shown[-1].number <= 1:
            return None
        url = reverse("leads:api-delivery-attempts", args=[delivery.public_id])
        return page_after(AttemptsNewestFirst, self.context["request"], url, shown[-1].number)


class LeadSerializer(serializers.ModelSerializer[Lead]):
    site = serializers.UUIDField(source="site.site_uuid", read_only=True)
    partner: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Lead
        fields = [
            "lead_id",
            "partner",
            "site",
            "status",
            "last_status_code",
            "last_error",
            "email",
            "name",
            "phone",
            "created",
            "updated",
        ]


class LeadDetailSerializer(LeadSerializer):
    # `site` stays the UUID, as in the list; the circuit says whether deliveries to it wait.
    site_circuit = CircuitSerializer(source="site", read_only=True)
    deliveries = DeliverySerializer(
        source=LATEST_DELIVERIES,
        many=True,
        read_only=True,
        help_text="The latest LEAD_PAGE_DELIVERIES deliveries, newest first; deliveries_next pages through the "
        "older ones.",
    )
    deliveries_total = serializers.IntegerField(read_only=True, help_text="The lead's deliveries, all of them.")
    deliveries_next = serializers.SerializerMethodField(
        help_text="The page of older deliveries (GET /api/leads/{lead_id}/deliveries/); null when none are left out."
    )

    class Meta(LeadSerializer.Meta):
        fields = [
            *LeadSerializer.Meta.fields,
            "site_circuit",
            "created_elsewhere",
            "data",
            "deliveries",
            "deliveries_total",
            "deliveries_next",
        ]

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_deliveries_next(self, lead: Lead) -> Optional[str]:
        shown = deliveries_of(lead)
        # Sequences number a lead's deliveries from 1: older ones exist while the oldest shown is not #1.
        if not shown or shown[-1].sequence <= 1:
            return None
        # The partner is named so the link stays unambiguous when another partner has this lead id.
        url = f"{reverse('leads:api-lead-deliveries', args=[lead.lead_id])}?{urlencode({'partner': lead.partner.slug})}"
        return page_after(DeliveriesNewestFirst, self.context["request"], url, shown[-1].sequence)
