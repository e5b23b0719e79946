"""The only module that speaks HTTP to Real Geeks' Incoming Leads API.

One `requests.Session` per process, explicit connect/read timeouts, a `User-Agent`, and one
`RealGeeksError` that says whether retrying can help. Credentials go in the Authorization header
only: never in a URL, a message or a log line; and only to hosts grants.rg_url allows, checked
before every call.
"""

import asyncio
import base64
import concurrent.futures
import errno
import http.client
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Optional, Protocol

import aiohttp
import requests
import requests.adapters
from django.conf import settings
from django.utils import timezone

from grants import rg_url
from leads import rg_operations
from leads.headers import response_headers_kept

logger = logging.getLogger(__name__)

USER_AGENT = "partner-portal/1 (+Real Geeks Incoming Leads API client)"
# DESIGN.md: 400/401/403/404/422 need a human; RG's own clients never retry 400, 401 and 422.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 422})
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
# RG's Ruby client sends it on creates: which of the site's Destinations should receive the lead.
ROUTER_DESTINATIONS_HEADER = "X-ROUTER-DESTINATIONS"
# RG's user list (GET /users) answers the push API's pass-through and the dashboard's agent
# pickers. It is a read, not a delivery: nothing stores, validates or retries it, so it is no
# Operation choice and no row of leads.rg_operations (whose every row is one), and `endpoint`
# knows its path beside the table.
LIST_USERS = "list_users"


class RealGeeksAccount(Protocol):
    """What Credentials.for_partner reads: a grants.models.Partner, not imported so that this
    module stays free of models."""

    @property
    def rg_username(self) -> str: ...

    @property
    def rg_password(self) -> str: ...

    def api_url(self) -> str: ...


@dataclass(frozen=True)
class Credentials:
    """Where and as whom to call RG. The password never appears in repr()."""

    base_url: str
    username: str
    password: str = field(repr=False)

    @classmethod
    def for_partner(cls, partner: RealGeeksAccount) -> "Credentials":
        """The partner's RG account as calls use it (the password decrypted, so keep the
        result no longer than the call or the pump needs it)."""
        return cls(partner.api_url(), partner.rg_username, partner.rg_password)


@dataclass(frozen=True)
class Endpoint:
    method: str
    url: str


@dataclass(frozen=True)
class Reply:
    """A 2xx answer; `headers` as leads.headers keeps them (secrets redacted, size bounded)."""

    status: int
    text: str
    headers: dict[str, str] = field(default_factory=dict, compare=False)

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
        headers: Optional[dict[str, str]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.permanent = permanent
        self.retry_after = retry_after
        # An error status's headers, kept as Reply.headers; empty when no answer came.
        self.headers = headers or {}


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
    """The method and URL of an operation: a row of leads.rg_operations, or LIST_USERS."""
    if operation == LIST_USERS:
        return Endpoint("GET", f"{base_url.rstrip('/')}/sites/{site_uuid}/users")
    return _endpoint_of(rg_operations.by_name(operation), base_url, site_uuid, lead_id)


def _endpoint_of(
    op: rg_operations.RealGeeksOperation,
    base_url: str,
    site_uuid: uuid.UUID | str,
    lead_id: uuid.UUID | str | None,
) -> Endpoint:
    base = v2_base_url(base_url) if op.v2 else base_url.rstrip("/")
    return Endpoint(op.method, f"{base}/sites/{site_uuid}{op.path.format(lead_id=lead_id)}")


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
    reply = _send(creds, endpoint(LIST_USERS, base_url=creds.base_url, site_uuid=site_uuid), None)
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
    """Send a stored delivery: `payload` as its operation, a row of leads.rg_operations
    (ValueError for any other name, LIST_USERS included: it is not a delivery)."""
    ep = _endpoint_of(rg_operations.by_name(operation), creds.base_url, site_uuid, lead_id)
    return _send(creds, ep, payload)


def _send(creds: Credentials, ep: Endpoint, body: Any) -> Reply:
    data = None if body is None else json.dumps(body).encode()
    return _send_bytes(session(), creds, ep, data)


def refuse_unless_allowed(ep: Endpoint) -> None:
    """Raise a permanent RealGeeksError, before anything is sent, when the URL's host may not
    receive the partner's credentials (grants.rg_url): a URL stored before the allowlist, or
    written straight into the database, fails its delivery instead of leaking the password."""
    problem = rg_url.send_refusal(ep.url)
    if problem is not None:
        raise RealGeeksError(
            f"Not sent: the partner's RG credentials go only to allowed hosts. {problem}", permanent=True
        )


def _send_bytes(
    client: requests.Session,
    creds: Credentials,
    ep: Endpoint,
    data: Optional[bytes],
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> Reply:
    refuse_unless_allowed(ep)
    headers = {**dict(extra_headers), "Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = JSON_CONTENT_TYPE
    connect, read = settings.REALGEEKS_CONNECT_TIMEOUT, settings.REALGEEKS_READ_TIMEOUT
    started = time.monotonic()
    for fresh_connection in (False, True):
        try:
            response = client.request(
                ep.method,
                ep.url,
                data=data,
                headers=headers,
                auth=(creds.username, creds.password),
                timeout=(connect, read),
                allow_redirects=False,
            )
            break
        except requests.ConnectTimeout:
            raise RealGeeksError(f"Could not connect to Real Geeks within {connect:g} s") from None
        except requests.ReadTimeout:
            raise RealGeeksError(f"Real Geeks did not answer within {read:g} s") from None
        except requests.ConnectionError as exc:
            if not fresh_connection and _stale_connection(exc):
                continue
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


def _stale_connection(exc: requests.ConnectionError) -> bool:
    """A pooled keep-alive connection the server closed just before we used it: the request never
    reached RG's application, so it is sent again at once on a new connection instead of being
    scheduled a minute later (RG merges by lead id, so even a duplicate would be harmless)."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    if isinstance(reason, BaseException) and reason.args:
        reason = reason.args[-1] if isinstance(reason.args[-1], BaseException) else reason
    return isinstance(reason, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected))


def _exception_name(exc: Exception) -> str:
    # The class name and the innermost reason, without URLs that could carry anything sensitive.
    reason = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", reason)
    return type(reason).__name__ if isinstance(reason, BaseException) else type(exc).__name__


def _reply_or_raise(response: requests.Response) -> Reply:
    return reply_or_raise(
        response.status_code,
        response.text,
        response.reason,
        response.headers.get("Retry-After"),
        headers=response.headers.items(),
    )


def reply_or_raise(
    status: int,
    text: str,
    reason: Optional[str],
    retry_after: Optional[str],
    *,
    headers: Iterable[tuple[str, str]] = (),
) -> Reply:
    """RG's answer as a Reply (2xx) or the RealGeeksError that says what it means; either keeps
    the answer's headers redacted and bounded (leads.headers), never in clear."""
    kept = response_headers_kept(headers)
    if 200 <= status < 300:
        return Reply(status, text, kept)
    message = f"Real Geeks answered {status}: {error_message(text) or reason or 'no reason given'}"
    raise RealGeeksError(
        message[:300],
        status=status,
        body=text,
        permanent=status in PERMANENT_STATUSES,
        retry_after=retry_after_seconds(retry_after) if status == 429 else None,
        headers=kept,
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


# Sending many calls at once (the delivery engine). Both senders take a prepared Call and return
# a concurrent.futures.Future of its Outcome, so the engine does not care which one runs; the
# README's dependency notes say why asyncio with aiohttp is the default.


@dataclass(frozen=True)
class Call:
    """One request, ready to go: the body is the stored payload's JSON, sent as it is, and
    `headers` are the stored delivery's own (see `delivery_headers`), sent beside ours."""

    creds: Credentials
    endpoint: Endpoint
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()  # (name, value) pairs: a Call stays hashable


def delivery_headers(*, router_destinations: str) -> tuple[tuple[str, str], ...]:
    """The headers a stored delivery adds to its call: the create's X-ROUTER-DESTINATIONS,
    forwarded as the partner's product sent it, or none when it named no Destinations."""
    return ((ROUTER_DESTINATIONS_HEADER, router_destinations),) if router_destinations else ()


@dataclass(frozen=True)
class Outcome:
    """What one call came to: a 2xx Reply or the RealGeeksError saying what went wrong."""

    reply: Optional[Reply]
    error: Optional[RealGeeksError]
    duration_ms: int

    @property
    def status(self) -> Optional[int]:
        """RG's HTTP status, or None when no answer came (a timeout, no connection)."""
        if self.reply is not None:
            return self.reply.status
        return self.error.status if self.error is not None else None

    @property
    def body(self) -> str:
        if self.reply is not None:
            return self.reply.text
        return self.error.body if self.error is not None else ""

    @property
    def error_message(self) -> str:
        return self.error.message if self.error is not None else ""

    @property
    def headers(self) -> dict[str, str]:
        """RG's response headers, already redacted; empty when no answer came."""
        if self.reply is not None:
            return self.reply.headers
        return self.error.headers if self.error is not None else {}


class ThreadSender:
    """A thread per call in flight over one pooled requests.Session."""

    def __init__(self, slots: int) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=slots, thread_name_prefix="rg-send")
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=slots)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def submit(self, call: Call) -> "concurrent.futures.Future[Outcome]":
        return self._pool.submit(self._run, call)

    def _run(self, call: Call) -> Outcome:
        started = time.monotonic()
        try:
            reply: Optional[Reply] = _send_bytes(self._session, call.creds, call.endpoint, call.body, call.headers)
            error = None
        except Exception as exc:  # any failure is an outcome (see _failure)
            reply, error = None, _failure(exc)
        return Outcome(reply, error, int((time.monotonic() - started) * 1000))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._session.close()


class AsyncioSender:
    """An asyncio event loop on its own thread, with one aiohttp session: a call in flight costs
    a coroutine, not a thread, and aiohttp's parser is far cheaper per request than requests'."""

    def __init__(self, slots: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rg-send-loop", daemon=True)
        self._thread.start()
        self._session = asyncio.run_coroutine_threadsafe(self._session_open(slots), self._loop).result()
        # Calls submitted beyond the slots wait here, and start the moment a slot frees, with
        # no round trip through the pump's thread (see leads.engine's ready buffer).
        self._slots = asyncio.run_coroutine_threadsafe(_semaphore(slots), self._loop).result()

    async def _session_open(self, slots: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=slots, limit_per_host=slots),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            skip_auto_headers=("Content-Type",),
        )

    def submit(self, call: Call) -> "concurrent.futures.Future[Outcome]":
        return asyncio.run_coroutine_threadsafe(self._run(call), self._loop)

    async def _run(self, call: Call) -> Outcome:
        async with self._slots:
            started = time.monotonic()
            try:
                reply: Optional[Reply] = await self._send(call)
                error = None
            except Exception as exc:  # any failure is an outcome (see _failure)
                reply, error = None, _failure(exc)
            return Outcome(reply, error, int((time.monotonic() - started) * 1000))

    async def _send(self, call: Call) -> Reply:
        refuse_unless_allowed(call.endpoint)
        connect, read = settings.REALGEEKS_CONNECT_TIMEOUT, settings.REALGEEKS_READ_TIMEOUT
        headers = {**dict(call.headers), "Authorization": _basic_auth(call.creds)}
        if call.body:
            headers["Content-Type"] = JSON_CONTENT_TYPE
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
        for fresh_connection in (False, True):
            try:
                async with self._session.request(
                    call.endpoint.method,
                    call.endpoint.url,
                    data=call.body or None,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                ) as response:
                    body = await response.read()
                    return reply_or_raise(
                        response.status,
                        body.decode("utf-8", errors="replace"),
                        response.reason,
                        response.headers.get("Retry-After"),
                        headers=response.headers.items(),
                    )
            except aiohttp.ConnectionTimeoutError:
                raise RealGeeksError(f"Could not connect to Real Geeks within {connect:g} s") from None
            except (TimeoutError, aiohttp.SocketTimeoutError):
                raise RealGeeksError(f"Real Geeks did not answer within {read:g} s") from None
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # See _stale_connection: a keep-alive connection closed under us is retried once, now.
                if not fresh_connection and _stale_async(exc):
                    continue
                raise RealGeeksError(f"Could not reach Real Geeks ({_async_error_name(exc)})") from None
            except aiohttp.ClientError as exc:
                raise RealGeeksError(f"Could not reach Real Geeks ({_async_error_name(exc)})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        async def finish() -> None:
            await self._session.close()

        asyncio.run_coroutine_threadsafe(finish(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def _failure(exc: Exception) -> RealGeeksError:
    """Whatever a call raised, as an outcome: a surprise in one call must not take down the pump
    and every other call in flight with it (the attempt is retried like a failed connection)."""
    if isinstance(exc, RealGeeksError):
        return exc
    logger.exception("unexpected failure calling Real Geeks")
    return RealGeeksError(f"Request to Real Geeks failed ({type(exc).__name__})")


async def _semaphore(slots: int) -> asyncio.Semaphore:
    return asyncio.Semaphore(slots)  # made on the loop that uses it


def _basic_auth(creds: Credentials) -> str:
    # As requests builds it (latin-1 where it fits, else UTF-8), so both senders send the same.
    pair = f"{creds.username}:{creds.password}"
    try:
        raw = pair.encode("latin-1")
    except UnicodeEncodeError:
        raw = pair.encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _stale_async(exc: Exception) -> bool:
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return True
    return isinstance(exc, aiohttp.ClientOSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE)


def _async_error_name(exc: Exception) -> str:
    # As _exception_name: the kind of failure, never a URL or a credential.
    if isinstance(exc, aiohttp.ClientConnectorError):
        return type(exc.os_error).__name__
    code = exc.errno if isinstance(exc, OSError) else None
    if code is not None and code in errno.errorcode:
        return f"{type(exc).__name__} {errno.errorcode[code]}"
    return type(exc).__name__


def sender_new(kind: str, slots: int) -> "ThreadSender | AsyncioSender":
    """The sender DELIVERY_SENDER names: "asyncio" (the default) or "threads"."""
    if kind == "threads":
        return ThreadSender(slots)
    if kind == "asyncio":
        return AsyncioSender(slots)
    raise ValueError(f"DELIVERY_SENDER must be 'asyncio' or 'threads', not {kind!r}")
