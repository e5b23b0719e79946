"""Leads as the browser tests need them: pushed by a partner's product and delivered, for real,
to the sandbox standing in for Real Geeks (the conftest's `sandbox_as_rg` runs tasks inline)."""

import uuid

from django.conf import settings

from grants.models import Partner
from leads.models import Delivery, Lead
from leads.services import lead_submit
from sandbox.faults import faults_update

# The site the conftest's `sunset_realty` grants to Acme, at the sandbox and in the portal.
SUNSET = uuid.UUID("5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70")


def push(partner: Partner, email: str, site_uuid: uuid.UUID = SUNSET, **fields: str) -> Lead:
    """A lead as a partner's product pushes it; its first attempt runs at once against the sandbox."""
    delivery = lead_submit(
        partner=partner, site_uuid=site_uuid, operation="create_lead", data={"source": "Web", "email": email, **fields}
    )
    return Lead.objects.get(pk=delivery.lead_id)


def dead_with_a_body_rg_refuses(partner: Partner, email: str, site_uuid: uuid.UUID = SUNSET, **fields: str) -> Lead:
    """A lead whose only attempt met an RG outage (a 503) with no retries left, and whose body
    now holds a half bath count RG refuses (an old payload, from before the portal checked it).

    The portal checks bodies with RG's own rules, so a body RG refuses with a 422 naming a field
    can only be one accepted before a rule existed: this writes one into the delivery.
    """
    attempts, settings.DELIVERY_MAX_ATTEMPTS = settings.DELIVERY_MAX_ATTEMPTS, 1
    try:
        faults_update(changes={"outage": True, "remaining": 1})
        lead = push(partner, email, site_uuid, **fields)
    finally:
        settings.DELIVERY_MAX_ATTEMPTS = attempts
    delivery = Delivery.objects.get(lead=lead)
    assert delivery.status == "dead"  # out of attempts
    activity = {"type": "property_viewed", "property": {"street_address": "123 Keolu Dr", "full_baths": 2.5}}
    Delivery.objects.filter(pk=delivery.pk).update(payload={**delivery.payload, "activities": [activity]})
    return lead
