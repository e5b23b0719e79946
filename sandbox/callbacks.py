"""The sandbox as RG's Lead Router calling a partner's Destination: RG-shaped bodies, signed
exactly as RG signs them (REALGEEKS_API.md section 2), sent over HTTP to the portal."""

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Optional

import requests
from django.conf import settings
from django.urls import reverse

from grants import destination
from grants.models import Partner
from grants.signing import sign
from sandbox.services import DEMO_AGENTS, sandbox_account_ensure, sandbox_agents

USER_AGENT = "PartnerPortal-Sandbox/1 (Lead Router stand-in)"
SEND_TIMEOUT = (5.0, 20.0)


def rfc3339_nanos(ns: int) -> str:
    """`2016-12-24T01:58:52.789337607Z`: RG's X-Lead-Router-Timestamp, nanoseconds and all."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def destination_url(partner: Partner) -> str:
    """Where RG would post for this partner: the portal's webhook under PORTAL_BASE_URL."""
    path = reverse("grants:realgeeks_destination", args=[partner.slug])
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def _site_fields(partner: Partner, site_uuid: uuid.UUID) -> dict[str, Any]:
    domain = f"site-{str(site_uuid)[:8]}.sandbox.invalid"
    return {
        "site_uuid": str(site_uuid),
        "site_domain": domain,
        "site_login_url": f"https://{domain}/login/",
        "partner_id": partner.rg_partner_id,
    }


def _lead_fields(action: str) -> dict[str, Any]:
    if action == destination.LEAD_UPDATED:
        # Partial, as RG sends it: the changed fields only; "" would unset one.
        return {"phone": "808-555-0199", "notes": ""}
    if action == destination.ACTIVITY_ADDED:
        return {"activities": [{"type": "note", "description": "Called, left a message.", "source": "Lead Manager"}]}
    if action in destination.POTENTIAL_SELLER_ACTIONS:
        return {
            "activities": [
                {
                    "type": "property_viewed",
                    "description": "Home valuation viewed",
                    "property": {"street_address": "123 Keolu Dr", "city": "Kailua", "state": "HI", "zip": "96734"},
                }
            ]
        }
    return {
        "source": "Real Geeks",
        "source_system": "realgeeks",
        "first_name": "Jack",
        "last_name": "Johnson",
        "email": "jack@sandbox.invalid",
        "phone": "808-123-1234",
        "role": "Buyer",
        "agent_name": DEMO_AGENTS[0]["name"],
        "agent_email": DEMO_AGENTS[0]["email"],
        "activities": [{"type": "visited", "description": "First visit to the site"}],
    }


def callback_body(
    *, action: str, partner: Partner, site_uuid: uuid.UUID, lead_id: Optional[uuid.UUID] = None, now_ns: int
) -> dict[str, Any]:
    """An RG-shaped body for `action`: the envelope, plus lead or user fields where RG sends them."""
    body: dict[str, Any] = {"action": action, **_site_fields(partner, site_uuid)}
    created = rfc3339_nanos(now_ns)
    if action in destination.LEAD_ACTIONS:
        # RG has been seen sending lead ids without dashes; the sandbox does too.
        body |= {"id": (lead_id or uuid.uuid4()).hex, "created": created, **_lead_fields(action)}
    elif action in destination.USER_ACTIONS:
        agents = sandbox_agents(site_uuid=site_uuid) or list(DEMO_AGENTS)
        body |= agents[0] if action == destination.USER_UPDATED else {"id": agents[0]["id"]}
    else:
        body["created"] = created
    return body


def callback_headers(*, action: str, body: bytes, secret: str, now_ns: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        destination.ACTION_HEADER: action,
        destination.SIGNATURE_HEADER: sign(body, secret),
        destination.TIMESTAMP_HEADER: rfc3339_nanos(now_ns),
    }


def callback_send(
    *,
    action: str,
    partner: Partner,
    site_uuid: uuid.UUID,
    lead_id: Optional[uuid.UUID] = None,
    url: Optional[str] = None,
) -> tuple[bytes, requests.Response]:
    """Sign and POST one callback as RG would; returns the exact body sent and the response.

    `integration_enabled` also lets the partner's sandbox credentials send to the site, as RG
    does once a client enables the Destination.
    """
    secrets = partner.webhook_secrets
    if not secrets:
        raise ValueError(f"Partner {partner.slug!r} has no webhook secret to sign with.")
    now_ns = time.time_ns()
    body = json.dumps(
        callback_body(action=action, partner=partner, site_uuid=site_uuid, lead_id=lead_id, now_ns=now_ns),
        separators=(",", ":"),
    ).encode()
    if action == destination.INTEGRATION_ENABLED:
        sandbox_account_ensure(username=partner.rg_username, password=partner.rg_password, site_uuids=[site_uuid])
    response = requests.post(
        url or destination_url(partner),
        data=body,
        headers=callback_headers(action=action, body=body, secret=secrets[0], now_ns=now_ns),
        timeout=SEND_TIMEOUT,
    )
    return body, response
