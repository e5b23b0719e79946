"""Input and output shapes of the read and act API. No logic beyond shaping."""

from typing import Any

from rest_framework import serializers

from grants.models import Site
from leads.circuit import circuit_state
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
    attempts = AttemptSerializer(many=True, read_only=True)

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
        ]


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
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta(LeadSerializer.Meta):
        fields = [*LeadSerializer.Meta.fields, "site_circuit", "created_elsewhere", "data", "deliveries"]
