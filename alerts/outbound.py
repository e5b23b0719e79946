"""Calls to the URLs partners give their Slack and signed-webhook channels.

A partner types these URLs, so they must not become a way into the portal's own network. Unless
ALERTS_ALLOW_LOCAL_URLS is on (development and tests, where the receivers are on 127.0.0.1), a
URL must be https, and a connection goes ahead only if the address it actually reached is a
public one. That is checked on the connected socket, before anything is sent, so a name that
resolves to 10.0.0.5, or changes its answer between a check and the call (DNS rebinding), is
refused all the same.

The session is the alerts' own, never leads.realgeeks' (which carries a partner's RG
credentials): no authentication of any kind, `trust_env` off (no .netrc, no proxy from the
environment), and redirects are not followed (a 3xx is an answer, and a failed one).
"""

import ipaddress
import re
import socket
from functools import lru_cache
from typing import Any, Optional
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

USER_AGENT = "PartnerPortal-Alerts/1"
MAX_URL_LENGTH = 2000
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
# Names that mean this machine or its private network whatever DNS says.
_LOCAL_NAMES = re.compile(r"(^|\.)(localhost|local|internal|localdomain|home\.arpa)$")


class AddressRefused(Exception):
    """The connection reached an address outbound calls may not go to."""


def url_refusal(url: str) -> Optional[str]:
    """Why a channel may not send to `url`, or None when it may (the address is checked again at
    every connection)."""
    allow_local = settings.ALERTS_ALLOW_LOCAL_URLS
    if len(url) > MAX_URL_LENGTH or not _VISIBLE_ASCII.fullmatch(url) or "\\" in url:
        return f"Use a plain ASCII URL of at most {MAX_URL_LENGTH} characters, without spaces."
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return "Enter the whole URL, starting with https://."
    if parts.scheme != "https" and not allow_local:
        return "Use https: notices must not cross the network in clear text."
    if "@" in parts.netloc:
        return "Leave user names and passwords out of the URL; signed webhooks carry a signature instead."
    try:
        if parts.port == 0:
            raise ValueError("port 0")
    except ValueError:
        return "The URL's port is not a number from 1 to 65535."
    host = parts.hostname or ""
    if not host:
        return "The URL has no host."
    if allow_local:
        return None
    if _LOCAL_NAMES.search(host.rstrip(".")):
        return f"{host} names a local or internal host; use a public one."
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: its addresses are checked when the call connects
    return address_refusal(str(address))


def validate_url(url: str) -> None:
    """A Django validator around `url_refusal`."""
    problem = url_refusal(url)
    if problem is not None:
        raise ValidationError(problem, code="alert_url_not_allowed")


def address_refusal(address: str) -> Optional[str]:
    """Why a call may not go to this IP address, or None."""
    if settings.ALERTS_ALLOW_LOCAL_URLS:
        return None
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global:
        return f"{ip} is not a public address (loopback, private, link-local or reserved)."
    return None


class _CheckedPeer:
    """Mixed into urllib3's connections: refuse the socket unless its peer may be called."""

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        problem = address_refusal(sock.getpeername()[0])
        if problem is not None:
            sock.close()
            raise AddressRefused(f"Refused to connect: {problem}")
        return sock


class _CheckedHTTPConnection(_CheckedPeer, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_CheckedPeer, HTTPSConnection):
    pass


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class _CheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}


@lru_cache(maxsize=1)
def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.headers["User-Agent"] = USER_AGENT
    adapter = _CheckedAdapter(max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def post(url: str, *, body: bytes, headers: dict[str, str]) -> requests.Response:
    """POST `body` to a channel's URL. Raises AddressRefused, requests' errors, or ValueError for
    a URL refused outright (the database may hold one set before the rules tightened)."""
    problem = url_refusal(url)
    if problem is not None:
        raise ValueError(problem)
    timeout = settings.ALERTS_HTTP_TIMEOUT_SECONDS
    return _session().post(
        url,
        data=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=(min(timeout, 5.0), timeout),
        allow_redirects=False,
    )
