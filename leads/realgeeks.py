"""The only module that speaks HTTP to Real Geeks' Incoming Leads API.

One `requests.Session` per process, explicit connect/read timeouts, a `User-Agent`, and one
`RealGeeksError` that says whether retrying can help. Credentials go in the Authorization header
only: never in a URL, a message or a log line.
"""

import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Optional

import requests
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)

USER_AGENT = "partner-portal/1 (+Real Geeks Incoming Leads API client)"
# DESIGN.md: 400/401/403/404/422 need a human; RG's own clients never retry 400, 401 and 422.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 422})


@dataclass(frozen=True)
class Credentials:
    """Where and as whom to call RG. The password never appears in repr()."""

    base_url: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Endpoint:
    method: str
    url: str


@dataclass(frozen=True)
class Reply:
    """A 2xx answer."""

    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text) if self.text.strip() else None


class RealGeeksError(Exception):
    """A call that did not succeed: an error status, a timeout or a connection failure."""

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        body: str = "",
        permanent: bool = False,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.permanent = permanent
        self.retry_after = retry_after


_session: Optional[requests.Session] = None
_session_pid: Optional[int] = None


def session() -> requests.Session:
    """This process's session. Made lazily, and again after a fork: workers must not share sockets."""
    global _session, _session_pid
    if _session is None or _session_pid != os.getpid():
        _session = requests.Session()
        _session.headers["User-Agent"] = USER_AGENT
        _session_pid = os.getpid()
    return _session


def v2_base_url(base_url: str) -> str:
    """RG's v2 lives beside /rest: `.../rest` becomes `.../v2/rest` (the sandbox mirrors this)."""
    base = base_url.rstrip("/")
    if base.endswith("/rest"):
        return base[: -len("/rest")] + "/v2/rest"
    return base + "/v2/rest"


def endpoint(
    operation: str, *, base_url: str, site_uuid: uuid.UUID | str, lead_id: uuid.UUID | str | None = None
) -> Endpoint:
    """The method and URL of one operation (the operation names of leads.models.Operation)."""
    base = base_url.rstrip("/")
    site = f"{base}/sites/{site_uuid}"
    if operation == "create_lead":
        return Endpoint("POST", f"{site}/leads")
    if operation == "update_lead":
        return Endpoint("PATCH", f"{site}/leads/{lead_id}")
    if operation == "add_activities":
        return Endpoint("POST", f"{site}/leads/{lead_id}/activities")
    if operation == "potential_seller":
        return Endpoint("POST", f"{site}/potential-seller-leads")
    if operation == "update_lead_v2":
        return Endpoint("PATCH", f"{v2_base_url(base)}/sites/{site_uuid}/leads/{lead_id}/")
    if operation == "list_users":
        return Endpoint("GET", f"{site}/users")
    raise ValueError(f"Unknown Real Geeks operation {operation!r}")


def create_lead(creds: Credentials, site_uuid: uuid.UUID | str, lead: dict[str, Any]) -> Reply:
    return _send(creds, endpoint("create_lead", base_url=creds.base_url, site_uuid=site_uuid), lead)


def update_lead(
    creds: Credentials, site_uuid: uuid.UUID | str, lead_id: uuid.UUID | str, lead: dict[str, Any]
) -> Reply:
    ep = endpoint("update_lead", base_url=creds.base_url, site_uuid=site_uuid, lead_id=lead_id)
    return _send(creds, ep, lead)


def add_activities(
    creds: Credentials, site_uuid: uuid.UUID | str, lead_id: uuid.UUID | str, activities: list[Any]
) -> Reply:
    ep = endpoint("add_activities", base_url=creds.base_url, site_uuid=site_uuid, lead_id=lead_id)
    return _send(creds, ep, activities)


def create_potential_seller_lead(creds: Credentials, site_uuid: uuid.UUID | str, lead: dict[str, Any]) -> Reply:
    return _send(creds, endpoint("potential_seller", base_url=creds.base_url, site_uuid=site_uuid), lead)


def update_lead_v2(
    creds: Credentials, site_uuid: uuid.UUID | str, lead_id: uuid.UUID | str, lead: dict[str, Any]
) -> Reply:
    ep = endpoint("update_lead_v2", base_url=creds.base_url, site_uuid=site_uuid, lead_id=lead_id)
    return _send(creds, ep, lead)


def list_users(creds: Credentials, site_uuid: uuid.UUID | str) -> list[dict[str, Any]]:
    """The site's agents and lenders."""
    reply = _send(creds, endpoint("list_users", base_url=creds.base_url, site_uuid=site_uuid), None)
    try:
        users = reply.json()
    except ValueError:
        raise RealGeeksError("Real Geeks sent a user list that is not JSON", status=reply.status) from None
    if not isinstance(users, list):
        raise RealGeeksError("Real Geeks sent a user list that is not a list", status=reply.status)
    return users


def call(
    operation: str, creds: Credentials, *, site_uuid: uuid.UUID | str, lead_id: uuid.UUID | str, payload: Any
) -> Reply:
    """Dispatch a stored delivery to its typed function."""
    if operation == "create_lead":
        return create_lead(creds, site_uuid, payload)
    if operation == "update_lead":
        return update_lead(creds, site_uuid, lead_id, payload)
    if operation == "add_activities":
        return add_activities(creds, site_uuid, lead_id, payload)
    if operation == "potential_seller":
        return create_potential_seller_lead(creds, site_uuid, payload)
    if operation == "update_lead_v2":
        return update_lead_v2(creds, site_uuid, lead_id, payload)
    raise ValueError(f"Unknown Real Geeks operation {operation!r}")


def _send(creds: Credentials, ep: Endpoint, body: Any) -> Reply:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json; charset=utf-8"
    connect, read = settings.REALGEEKS_CONNECT_TIMEOUT, settings.REALGEEKS_READ_TIMEOUT
    started = time.monotonic()
    try:
        response = session().request(
            ep.method,
            ep.url,
            data=data,
            headers=headers,
            auth=(creds.username, creds.password),
            timeout=(connect, read),
            allow_redirects=False,
        )
    except requests.ConnectTimeout:
        raise RealGeeksError(f"Could not connect to Real Geeks within {connect:g} s") from None
    except requests.ReadTimeout:
        raise RealGeeksError(f"Real Geeks did not answer within {read:g} s") from None
    except requests.ConnectionError as exc:
        raise RealGeeksError(f"Could not reach Real Geeks ({_exception_name(exc)})") from None
    except requests.RequestException as exc:
        raise RealGeeksError(f"Request to Real Geeks failed ({_exception_name(exc)})") from None
    logger.info(
        "realgeeks %s %s -> %s in %.0f ms",
        ep.method,
        ep.url,
        response.status_code,
        (time.monotonic() - started) * 1000,
    )
    return _reply_or_raise(response)


def _exception_name(exc: Exception) -> str:
    # The class name and the innermost reason, without URLs that could carry anything sensitive.
    reason = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", reason)
    return type(reason).__name__ if isinstance(reason, BaseException) else type(exc).__name__


def _reply_or_raise(response: requests.Response) -> Reply:
    status, text = response.status_code, response.text
    if 200 <= status < 300:
        return Reply(status, text)
    message = f"Real Geeks answered {status}: {error_message(text) or response.reason or 'no reason given'}"
    retry_after = retry_after_seconds(response.headers.get("Retry-After")) if status == 429 else None
    raise RealGeeksError(
        message[:300], status=status, body=text, permanent=status in PERMANENT_STATUSES, retry_after=retry_after
    )


_TAGS = re.compile(r"<[^>]+>")


def error_message(text: str) -> str:
    """RG's `{"error": ...}` message, or the start of whatever else came back (an HTML 503 page)."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return data["error"][:200]
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    plain = title.group(1) if title else _TAGS.sub(" ", text)
    return " ".join(plain.split())[:200]


def retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """Retry-After as seconds from now: either delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - timezone.now()).total_seconds())
