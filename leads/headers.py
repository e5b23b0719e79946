"""HTTP headers as the portal keeps and shows them: secrets redacted, size bounded.

Pure functions. leads.realgeeks applies `response_headers_kept` to every answer from Real
Geeks before anything else sees it, so a cookie or token RG (or a proxy in front of it) sends
never reaches the database, a page or a log in clear; portal.attempts shows the request headers
with the same REDACTED marker.
"""

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
# A hostile or broken server must not bloat leads_deliveryattempt: the first MAX_HEADERS names
# are kept, each value cut to MAX_VALUE_CHARS (a real RG answer has about a dozen short ones).
MAX_HEADERS = 50
MAX_VALUE_CHARS = 500
MAX_NAME_CHARS = 100

# Names whose value is a credential whatever the server: these four by RFC 9110/6265, and any
# name that says it carries a token, key, secret, signature, password, session or cookie.
_SECRET_NAMES = frozenset({"set-cookie", "authorization", "proxy-authenticate", "www-authenticate"})
_SECRET_WORDS = re.compile(r"token|key|secret|signature|passw|auth|session|cookie|credential", re.IGNORECASE)
# C0 controls and DEL: PostgreSQL's jsonb refuses \u0000, and none belongs in a header anyway.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def is_secret(name: str) -> bool:
    """Whether a header's value must be kept out of storage and pages."""
    return name.lower() in _SECRET_NAMES or _SECRET_WORDS.search(name) is not None


def response_headers_kept(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The headers as stored on an attempt: secrets' values replaced by REDACTED (the name is
    kept, so an engineer sees that RG sent one), repeated names joined with ", " (RFC 9110
    §5.3), at most MAX_HEADERS names, each value at most MAX_VALUE_CHARS, no control characters.
    Names keep the server's spelling; a name repeated in other case joins the first spelling."""
    kept: dict[str, str] = {}
    spelling: dict[str, str] = {}  # lower-case name -> the key used in `kept`
    for raw_name, raw_value in headers:
        name = _CONTROL.sub("", str(raw_name))[:MAX_NAME_CHARS].strip()
        if not name:
            continue
        key = spelling.get(name.lower())
        if key is None:
            if len(kept) >= MAX_HEADERS:
                continue
            key = spelling[name.lower()] = name
            kept[key] = ""
        if is_secret(key):
            kept[key] = REDACTED
            continue
        value = _CONTROL.sub("", str(raw_value)).strip()
        joined = f"{kept[key]}, {value}" if kept[key] else value
        kept[key] = joined[:MAX_VALUE_CHARS]
    return kept
