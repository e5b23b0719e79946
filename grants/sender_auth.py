"""Whether a grant email comes from Real Geeks, as the receiving mail server found it.

Pure: the raw message and two settings' values in, a SenderCheck out. The mail server that
received the message (the provider behind the inbound webhook, the grant mailbox's server)
checks DKIM and SPF and writes what it found in an `Authentication-Results` header (RFC 8601),
read here with the `authres` library. The rules, in one place:

- Only a header whose authserv-id is a trusted receiving server counts, and only the topmost
  one: a server adds its header above the message it received, so a header below it, even one
  naming the same server, may be the sender's own writing. Headers of other servers above it
  (a later hop inside our own mail system) are passed over. A header that cannot be read stops
  the search, since it may be the trusted server's own.
- In that header: a DKIM pass whose signing domain (header.d, else the domain of header.i), or
  an SPF pass whose envelope sender (smtp.mailfrom), is a sender domain or one of its subdomains.
- Aligned with From, like DMARC's relaxed alignment: the From address is under the same sender
  domain. RG's platform may sign mail its customers send; a DKIM pass for realgeeks.com on a
  message From someone else's domain is not Real Geeks speaking.

This trusts the receiving server to add its header to every message it passes on: list only
servers that do (and that remove, or sit above, headers claiming their name).
"""

import email.parser
import email.utils
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email import policy
from typing import Any, Optional

import authres

# A longer header is not read: authres's work grows with the length, and real ones are < 2 KiB.
_MAX_HEADER_CHARS = 8192
# Headers a sender stacks below the receiving server's are never reached; this bounds the search.
_MAX_HEADERS = 50
_MAX_DETAIL_CHARS = 500
_METHODS = {"dkim": "DKIM", "spf": "SPF"}
NO_TRUSTED_HEADER = "no Authentication-Results from a trusted server"


@dataclass(frozen=True)
class SenderCheck:
    verified: bool
    detail: str
    """For staff: what passed and who checked it, or why the sender is not verified."""


@dataclass(frozen=True)
class _Result:
    method: str
    result: str
    domain: str

    def __str__(self) -> str:
        text = f"{_METHODS[self.method]} {self.result}"
        return f"{text} for {self.domain}" if self.domain else text


def _domain(value: str) -> str:
    return value.rpartition("@")[2].strip().rstrip(".").lower()


def _under(domain: str, parent: str) -> bool:
    return domain == parent or domain.endswith("." + parent)


def _parsed(value: str) -> Optional[Any]:
    """The header value as authres reads it, or None when it cannot be read."""
    # Yahoo and Amazon SES end the header with a ";" that RFC 8601's grammar has no room for;
    # an empty last clause says nothing, so it is dropped rather than failing the whole header.
    text = "".join(value.splitlines()).strip().removesuffix(";")
    if len(text) > _MAX_HEADER_CHARS:
        return None
    try:
        # authres's default, lenient reading: a property it cannot read is left out (as with
        # Fastmail's "x-bits=2048"), so a result may lose its domain, and then verifies nothing.
        return authres.core_features().parse_value(text)
    except Exception:  # authres's own errors, ValueError, RecursionError (nested comments): hostile input
        return None


def _receiving_servers_header(values: Iterable[str], trusted: set[str]) -> tuple[Optional[Any], str]:
    """The topmost header a trusted server wrote, or None and why not."""
    others: list[str] = []
    for value in list(values)[:_MAX_HEADERS]:
        header = _parsed(value)
        if header is None:
            return None, "an Authentication-Results header could not be read"
        if header.authserv_id in trusted:
            return header, ""
        others.append(str(header.authserv_id)[:100])
    if others:
        return None, f"{NO_TRUSTED_HEADER} (only from {', '.join(list(dict.fromkeys(others))[:3])})"
    return None, NO_TRUSTED_HEADER


def _results(header: Any) -> list[_Result]:
    """The DKIM and SPF results in a header, each with the domain it is for."""
    found = []
    for result in header.results:
        method = getattr(result, "method", "")
        if method not in _METHODS:
            continue
        properties: dict[tuple[str, str], str] = {}
        for prop in result.properties:
            properties.setdefault((str(prop.type).lower(), str(prop.name).lower()), str(prop.value or ""))
        if method == "dkim":
            identity = properties.get(("header", "d")) or properties.get(("header", "i"), "")
        else:
            identity = properties.get(("smtp", "mailfrom"), "")
        found.append(_Result(method, str(result.result).lower(), _domain(identity)))
    return found


def _from_domain(values: Sequence[str]) -> Optional[str]:
    addresses = [address for _, address in email.utils.getaddresses([str(v) for v in values]) if address]
    if len(addresses) != 1 or "@" not in addresses[0]:
        return None
    return _domain(addresses[0]) or None


def _not_verified(detail: str) -> SenderCheck:
    return SenderCheck(verified=False, detail=detail[:_MAX_DETAIL_CHARS])


def sender_check(raw: bytes, *, trusted_authserv_ids: Sequence[str], sender_domains: Sequence[str]) -> SenderCheck:
    """Verified when the topmost Authentication-Results of a trusted server shows DKIM or SPF
    passing for a sender domain that the From address is under too. Never raises."""
    trusted = {server.strip().lower() for server in trusted_authserv_ids if server.strip()}
    domains = [_domain(domain) for domain in sender_domains if domain.strip()]
    if not trusted:
        return _not_verified(f"{NO_TRUSTED_HEADER} (GRANT_EMAIL_TRUSTED_AUTHSERV_IDS is empty)")
    if not domains:
        return _not_verified("no sender domain is configured (GRANT_EMAIL_SENDER_DOMAINS)")
    headers = email.parser.BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
    header, problem = _receiving_servers_header(map(str, headers.get_all("Authentication-Results") or []), trusted)
    if header is None:
        return _not_verified(problem)
    checked_by = f"(checked by {header.authserv_id})"
    from_domain = _from_domain(headers.get_all("From") or [])
    results = _results(header)
    passed = [r for r in results if r.result == "pass" and any(_under(r.domain, d) for d in domains)]
    for result in passed:
        if from_domain and any(_under(result.domain, d) and _under(from_domain, d) for d in domains):
            return SenderCheck(verified=True, detail=f"{result} {checked_by}"[:_MAX_DETAIL_CHARS])
    found = ", ".join(map(str, results)) or "no DKIM or SPF result"
    if from_domain is None:
        found += "; no single From address"
    elif not any(_under(from_domain, d) for d in domains):
        found += f"; From {from_domain} is not a sender domain"
    elif passed:
        found += f"; not aligned with From {from_domain}"
    return _not_verified(f"{found} {checked_by}")
