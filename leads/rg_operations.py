"""The calls of RG's Incoming Leads API that a delivery makes, as one table (REALGEEKS_API.md
section 1): adding an operation is a row here and its choice in leads.models.Operation.

Everything else reads the table: leads.realgeeks builds the method and URL, leads.services
validates the body, leads.models knows which operations create the lead, and the push API
(leads.api.push, leads.urls) serves each row under RG's own path with RG's success status.
Pure data and no Django models, so leads.realgeeks can import it (named `rg_` as grants.rg_url
is, beside the top-level `operations` app).

RG's user list (GET /users) is not a row: see realgeeks.LIST_USERS.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from leads.validation import validate_activities, validate_lead, validate_potential_seller


@dataclass(frozen=True)
class RealGeeksOperation:
    """One delivery operation: what RG expects, and what the portal does with it."""

    name: str  # stored in Delivery.operation: never rename one
    method: str
    # After `/sites/{site_uuid}`, with `{lead_id}` where the lead's id goes; RG's exactly
    # (v2 ends with a slash, v1 does not).
    path: str
    # Under RG's v2 base (realgeeks.v2_base_url) instead of /rest.
    v2: bool
    # leads.validation's check of a request body: a checked copy, or PayloadError as RG would.
    validate: Callable[[Any], Any]
    # Brings the lead into existence at RG; the other operations need one of these delivered first.
    creates_lead: bool
    # RG's answer when it accepts the call, which the push API gives too.
    success_status: int
    # The push API's OpenAPI summary for this path.
    summary: str


def _validate_changes(data: Any) -> dict[str, Any]:
    # A PATCH: only present fields change, and "" is accepted for any field but activities.
    return validate_lead(data, partial=True)


OPERATIONS: dict[str, RealGeeksOperation] = {
    op.name: op
    for op in (
        RealGeeksOperation(
            name="create_lead",
            method="POST",
            path="/leads",
            v2=False,
            validate=validate_lead,
            creates_lead=True,
            success_status=201,
            summary="Create a lead (RG: POST /rest/sites/{site_uuid}/leads)",
        ),
        RealGeeksOperation(
            name="update_lead",
            method="PATCH",
            path="/leads/{lead_id}",
            v2=False,
            validate=_validate_changes,
            creates_lead=False,
            success_status=200,
            summary="Update a lead; activities in the body are added (RG: PATCH .../leads/{lead_id})",
        ),
        RealGeeksOperation(
            name="add_activities",
            method="POST",
            path="/leads/{lead_id}/activities",
            v2=False,
            validate=validate_activities,
            creates_lead=False,
            success_status=200,
            summary="Add activities: the body is a JSON list (RG: POST .../leads/{lead_id}/activities)",
        ),
        RealGeeksOperation(
            name="potential_seller",
            method="POST",
            path="/potential-seller-leads",
            v2=False,
            validate=validate_potential_seller,
            creates_lead=True,
            success_status=201,
            summary="Create a potential seller lead (RG: POST .../potential-seller-leads)",
        ),
        RealGeeksOperation(
            name="update_lead_v2",
            method="PATCH",
            path="/leads/{lead_id}/",
            v2=True,
            validate=_validate_changes,
            creates_lead=False,
            success_status=200,
            summary='Update a lead, v2: "" unsets a field (RG: PATCH /v2/rest/sites/.../leads/{lead_id}/)',
        ),
    )
}


def by_name(name: str) -> RealGeeksOperation:
    """The operation stored as `name`; ValueError for any other name."""
    try:
        return OPERATIONS[name]
    except KeyError:
        raise ValueError(f"Unknown Real Geeks operation {name!r}") from None
