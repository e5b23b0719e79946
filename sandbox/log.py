"""The sandbox's request log: every Incoming API request it answered, for tests and people to read.

Only what identifies a request is kept: the Authorization header never is (the username is
decoded from it separately by the caller).
"""

import uuid
from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet

from sandbox.models import SandboxRequest

MAX_BODY_CHARS = 65_536
# Rows kept; older ones are deleted now and then so a long `make run` or benchmark stays bounded.
KEEP_ROWS = 100_000
PRUNE_EVERY = 1_000


def request_record(
    *,
    method: str,
    path: str,
    site: str,
    lead_id: str,
    username: str,
    status: int,
    router_destinations: str = "",
    request_body: bytes,
    response_body: bytes,
    fault: str,
    duration_ms: int,
) -> SandboxRequest:
    record = SandboxRequest.objects.create(
        method=_text(method, 10),
        path=_text(path, 500),
        site=_text(canonical_id(site), 100),
        lead_id=_text(canonical_id(lead_id), 100),
        username=_text(username, 200),
        status=status,
        router_destinations=_text(router_destinations, 500),
        request_body=_body(request_body),
        response_body=_body(response_body),
        fault=_text(fault, 100),
        duration_ms=duration_ms,
    )
    if record.pk % PRUNE_EVERY == 0:
        SandboxRequest.objects.filter(pk__lte=record.pk - KEEP_ROWS).delete()
    return record


def canonical_id(text: str) -> str:
    """A UUID in its canonical spelling, so filters match however a sender spelled it; other text as is."""
    try:
        return str(uuid.UUID(text)) if text.isascii() else text
    except ValueError:
        return text


def _text(value: str, limit: int) -> str:
    # PostgreSQL text cannot hold NUL, and a path or username from the wire may contain one.
    return value.replace("\x00", "\N{REPLACEMENT CHARACTER}")[:limit]


def _body(raw: bytes) -> str:
    text = raw[: MAX_BODY_CHARS * 4].decode("utf-8", errors="replace")
    if len(text) > MAX_BODY_CHARS:
        text = text[:MAX_BODY_CHARS] + "\N{HORIZONTAL ELLIPSIS}"
    return _text(text, MAX_BODY_CHARS + 1)


def requests_matching(
    params: Mapping[str, str], *, requests: QuerySet[SandboxRequest], default_limit: int = 100
) -> list[SandboxRequest]:
    """Of `requests`, newest first, those matching `site`, `lead_id`, `method`, `status`,
    `since_id` (ids above it), at most `limit` (max 1000).

    Values that cannot match (a non-numeric status or id, a NUL) match nothing rather than failing.
    """
    if any("\x00" in value for value in params.values()):
        return []
    for name in ("site", "lead_id"):
        if params.get(name):
            requests = requests.filter(**{name: canonical_id(params[name])})
    if params.get("method"):
        requests = requests.filter(method=params["method"].upper())
    for name, lookup in (("status", "status"), ("since_id", "pk__gt")):
        if params.get(name):
            number = _integer(params[name])
            if number is None:
                return []
            requests = requests.filter(**{lookup: number})
    limit = _integer(params.get("limit", "")) or default_limit
    return list(requests.order_by("-pk")[: max(1, min(limit, 1000))])


def _integer(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def request_as_dict(record: SandboxRequest) -> dict[str, Any]:
    return {
        "id": record.pk,
        "created": record.created.isoformat(),
        "method": record.method,
        "path": record.path,
        "site": record.site,
        "lead_id": record.lead_id,
        "username": record.username,
        "status": record.status,
        "router_destinations": record.router_destinations,
        "request_body": record.request_body,
        "response_body": record.response_body,
        "fault": record.fault,
        "duration_ms": record.duration_ms,
    }
