"""The sandbox's Incoming Leads API: RG's paths, statuses and error bodies, plus injected faults.

Every request goes through `incoming`, which applies faults, authenticates, runs one operation
and records the exchange. Plain Django views: RG's API has no CSRF and the portal's own push API
(DRF) must not share code paths with the thing it is tested against.
"""

import functools
import html
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from leads.validation import PayloadError, parse_json, validate_activities, validate_lead, validate_potential_seller
from sandbox import auth, faults, log, services, store
from sandbox.models import SandboxLead


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    lead_id: str = ""


Operation = Callable[[bytes, uuid.UUID, str], Answer]
View = Callable[..., HttpResponse]

# RG's Ruby client names the site's Destinations that should get a new lead in this header.
# Spelled here, not imported from leads.realgeeks: the sandbox must not agree with the portal's
# mistakes by sharing its code.
ROUTER_DESTINATIONS = "X-ROUTER-DESTINATIONS"


def incoming(method: str) -> Callable[[Operation], View]:
    """Wrap an operation `(body, site_uuid, lead_id) -> Answer` answering `method` on one RG path."""

    def decorate(operation: Operation) -> View:
        @csrf_exempt
        @functools.wraps(operation)
        def view(request: HttpRequest, site: str, lead_id: str = "") -> HttpResponse:
            started = time.monotonic()
            try:
                body: bytes | None = request.body
            except RequestDataTooBig:
                body = None
            credentials = auth.basic_credentials(request)
            fault = faults.fault_take()
            # No transaction is open here, so a slow or hanging answer holds no lock.
            if fault and fault.delay_seconds:
                time.sleep(fault.delay_seconds)
            # The lead's change and the log line in one transaction: one turn at the embedded
            # default's SQLite write lock per request, not two.
            with transaction.atomic():
                return _answer_and_record(request, operation, method, body, site, lead_id, credentials, fault, started)

        return view

    return decorate


def _answer_and_record(
    request: HttpRequest,
    operation: Operation,
    method: str,
    body: bytes | None,
    site: str,
    lead_id: str,
    credentials: tuple[str, str] | None,
    fault: faults.Fault | None,
    started: float,
) -> HttpResponse:
    if fault and fault.status:
        answer = Answer(fault.status, {"error": HTTPStatus(fault.status).phrase}, lead_id)
    elif body is None:
        # Over DATA_UPLOAD_MAX_MEMORY_SIZE. 400 rather than 413: senders must not retry it.
        answer = Answer(400, {"error": "Request body is too large."}, lead_id)
    else:
        answer = _answer(operation, method, request.method, body, site, lead_id, credentials)
    response = _response(answer, html_errors=bool(fault and fault.html_errors))
    # A request id of the kind load balancers add, so the portal's attempt view has a response
    # header worth showing in the demo.
    response["X-Request-Id"] = uuid.uuid4().hex
    if fault and fault.status:
        # Django logs every 5xx as an ERROR; an injected one is no error of ours.
        response._has_been_logged = True  # type: ignore[attr-defined]
    log.request_record(
        method=request.method or "",
        path=request.path,
        site=site,
        lead_id=answer.lead_id,
        username=credentials[0] if credentials else "",
        status=answer.status,
        router_destinations=request.headers.get(ROUTER_DESTINATIONS, ""),
        request_body=body or b"",
        response_body=response.content,
        fault=fault.label if fault else "",
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    return response


def _answer(
    operation: Operation,
    method: str,
    request_method: str | None,
    body: bytes,
    site: str,
    lead_id: str,
    credentials: tuple[str, str] | None,
) -> Answer:
    if request_method != method:
        return Answer(405, {"error": f"Method not allowed: use {method}."}, lead_id)
    try:
        auth.authenticate(credentials, site)
    except auth.Unauthorized as e:
        return Answer(401, {"error": e.message}, lead_id)
    site_uuid = uuid.UUID(site)  # authenticate() accepted it as a UUID
    try:
        return operation(body, site_uuid, lead_id)
    except PayloadError as e:
        return Answer(e.status, {"error": e.message}, lead_id)
    except store.LeadNotFound:
        return Answer(404, {"error": "Lead not found"}, lead_id)


def _response(answer: Answer, *, html_errors: bool) -> HttpResponse:
    if html_errors and answer.status >= 400:
        # RG has been seen answering 503 with an HTML page; clients must not choke on it.
        phrase = html.escape(f"{answer.status} {HTTPStatus(answer.status).phrase}")
        page = f"<html><head><title>{phrase}</title></head><body><h1>{phrase}</h1></body></html>\n"
        return HttpResponse(page, status=answer.status, content_type="text/html; charset=utf-8")
    response = HttpResponse(json.dumps(answer.body), status=answer.status, content_type="application/json")
    if answer.status == 401:
        response["WWW-Authenticate"] = 'Basic realm="Real Geeks sandbox"'
    return response


def _body_lead_id(data: dict[str, Any]) -> str:
    lead_id = data.get("id")
    return lead_id if isinstance(lead_id, str) else ""


@incoming("POST")
def lead_create(body: bytes, site_uuid: uuid.UUID, lead_id: str) -> Answer:
    lead = validate_lead(parse_json(body))
    stored = store.lead_receive(site_uuid=site_uuid, data=lead)
    return Answer(201, {}, _body_lead_id(lead) or str(stored.lead_id))


@incoming("PATCH")
def lead_update(body: bytes, site_uuid: uuid.UUID, lead_id: str) -> Answer:
    changes = validate_lead(parse_json(body), partial=True)
    store.lead_update(site_uuid=site_uuid, lead_id=store.lead_id_parse(lead_id), data=changes)
    return Answer(200, {}, lead_id)


@incoming("PATCH")
def lead_update_v2(body: bytes, site_uuid: uuid.UUID, lead_id: str) -> Answer:
    changes = validate_lead(parse_json(body), partial=True)
    store.lead_update(site_uuid=site_uuid, lead_id=store.lead_id_parse(lead_id), data=changes, blank_unsets=True)
    return Answer(200, {}, lead_id)


@incoming("POST")
def activities_add(body: bytes, site_uuid: uuid.UUID, lead_id: str) -> Answer:
    activities = validate_activities(parse_json(body))
    store.activities_add(site_uuid=site_uuid, lead_id=store.lead_id_parse(lead_id), activities=activities)
    return Answer(200, {}, lead_id)


@incoming("POST")
def potential_seller_create(body: bytes, site_uuid: uuid.UUID, lead_id: str) -> Answer:
    lead = validate_potential_seller(parse_json(body))
    stored = store.lead_receive(site_uuid=site_uuid, data=lead, kind=SandboxLead.Kind.POTENTIAL_SELLER)
    return Answer(201, {}, _body_lead_id(lead) or str(stored.lead_id))


@incoming("GET")
def users_list(body: bytes, site_uuid: uuid.UUID, lead_id: str) -> Answer:
    return Answer(200, services.sandbox_agents(site_uuid=site_uuid))


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other path under the API: a JSON 404, as an API answers, not Django's HTML page."""
    return HttpResponse(json.dumps({"error": "Not found"}), status=404, content_type="application/json")
