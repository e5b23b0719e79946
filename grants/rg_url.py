"""Where a partner's Real Geeks credentials may be sent.

The worker calls a partner's RG API URL with HTTP Basic and the partner's RG password, so that
URL decides who receives the password. It must name a host in REALGEEKS_ALLOWED_HOSTS, over
https and on the port the entry names (443 when it names none). Loopback entries (127.0.0.1,
localhost, ::1: the sandbox and local stand-ins) also admit http, and any port unless they name one.

The check is deliberately strict, a host compared as written with nothing resolved: no user
name or password in the URL, visible ASCII only, no query or fragment, no trailing dot, and IP
literals only where the allowlist spells them the same way (127.1, 2130706433 and
[::ffff:127.0.0.1] are not 127.0.0.1). It runs wherever a URL is set (dashboard, admin,
add_partner, partner_create), at start-up for REALGEEKS_API_URL in production, and again before
every call to RG (leads.realgeeks), whatever the database holds by then.
"""

import functools
import re
from collections.abc import Iterable
from typing import Optional

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
# Forms that change a partner's URL ask for the RG password with it: the password entered is
# the one sent to the new URL, so the stored one never reaches a URL its setter chose blind.
URL_CHANGE_REFUSED = (
    "Enter the RG password again to change the RG API URL: the password is sent to the new URL, "
    "so whoever chooses the URL must know it."
)

_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<netloc>[^/?#]*)(?P<rest>.*)")
_HOST_PORT = re.compile(r"(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[1-9][0-9]{0,4}))?")
_ANY_PORT = 0


def refusal(url: str, allowed_hosts: Optional[Iterable[str]] = None) -> Optional[str]:
    """Why the partner's credentials must not be sent to `url`, or None when they may.

    `allowed_hosts` defaults to the REALGEEKS_ALLOWED_HOSTS setting. Verdicts are cached per URL
    and allowlist, so checking before every call costs a dictionary look-up.
    """
    allowed = tuple(settings.REALGEEKS_ALLOWED_HOSTS if allowed_hosts is None else allowed_hosts)
    return _refusal(url, allowed)


def send_refusal(url: str) -> Optional[str]:
    """`refusal` of the scheme and host of a URL about to be called (the path does not change
    who receives the request), so the cache holds one verdict per host, not one per lead."""
    scheme, separator, rest = url.partition("://")
    return refusal(scheme + separator + rest.split("/", 1)[0])


def validate(url: str) -> None:
    """A Django validator: ValidationError when credentials must not be sent to `url`."""
    problem = refusal(url)
    if problem is not None:
        raise ValidationError(problem, code="rg_url_not_allowed")


@functools.lru_cache(maxsize=256)
def _refusal(url: str, allowed: tuple[str, ...]) -> Optional[str]:
    if not _VISIBLE_ASCII.fullmatch(url) or "\\" in url:
        return "Use plain ASCII in the URL: no spaces, backslashes, control characters or look-alike letters."
    match = _URL.fullmatch(url)
    if match is None:
        return "Enter the whole URL, starting with https://."
    if "@" in match["netloc"]:
        return "Leave the user name and password out of the URL: they go in the RG username and password fields."
    host_port = _HOST_PORT.fullmatch(match["netloc"])
    if host_port is None or int(host_port["port"] or 443) > 65535:
        return "The URL's host is not a plain host name or IP address, with an optional port."
    if "?" in match["rest"] or "#" in match["rest"]:
        return "Leave the query (?) and fragment (#) out of the URL."
    scheme, host = match["scheme"].lower(), host_port["host"].lower()
    if host.endswith("."):
        return "Write the host without a trailing dot."
    entries = _entries(allowed)
    if host not in entries:
        return (
            f"{host} is not a host the portal may send RG credentials to "
            f"(REALGEEKS_ALLOWED_HOSTS: {', '.join(allowed) or 'none'})."
        )
    if scheme != "https" and not (scheme == "http" and host in LOOPBACK_HOSTS):
        return "Use https: the RG password must not cross the network in clear text."
    port = int(host_port["port"] or (443 if scheme == "https" else 80))
    if entries[host] not in (_ANY_PORT, port):
        return f"Use port {entries[host]} for {host} (REALGEEKS_ALLOWED_HOSTS)."
    return None


@functools.lru_cache(maxsize=16)
def _entries(allowed: tuple[str, ...]) -> dict[str, int]:
    """The allowlist as host -> port; a loopback host without one admits any port."""
    entries: dict[str, int] = {}
    for entry in allowed:
        text = entry.strip().lower()
        if text.count(":") > 1 and not text.startswith("["):
            text = f"[{text}]"  # a bare IPv6 address, as "::1"
        match = _HOST_PORT.fullmatch(text)
        if match is None or match["host"].endswith("."):
            raise ImproperlyConfigured(
                f"REALGEEKS_ALLOWED_HOSTS: {entry!r} is not a host name or IP address with an optional :port."
            )
        host, port = match["host"], match["port"]
        entries[host] = int(port) if port else (_ANY_PORT if host in LOOPBACK_HOSTS else 443)
    return entries
