"""Input and output shapes of the read and act API. No logic beyond shaping."""

from typing import Any

from rest_framework import serializers

from grants.models import Site
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


class SiteSerializer(serializers.ModelSerializer[Site]):
    partner: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Site
        fields = ["site_uuid", "partner", "name", "domain", "status", "source", "granted_at", "created"]


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
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta(LeadSerializer.Meta):
        fields = [*LeadSerializer.Meta.fields, "created_elsewhere", "data", "deliveries"]
