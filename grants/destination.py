"""Facts about RG's Destination callbacks (REALGEEKS_API.md section 2), as pure functions.

The choices RG's docs leave open are made here, in one place, so they are easy to change.
"""

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Optional

ACTION_HEADER = "X-Lead-Router-Action"
SIGNATURE_HEADER = "X-Lead-Router-Signature"
TIMESTAMP_HEADER = "X-Lead-Router-Timestamp"

INTEGRATION_ENABLED = "integration_enabled"
INTEGRATION_DISABLED = "integration_disabled"
LEAD_CREATED = "created"
LEAD_UPDATED = "updated"
ACTIVITY_ADDED = "activity_added"
USER_UPDATED = "user_updated"
USER_DELETED = "user_deleted"
# RG's docs mention "a potential-seller action" without naming it. We accept these spellings;
# add the real one here when RG tells us (an unknown action is kept and acknowledged anyway,
# and can be reprocessed once it is listed).
POTENTIAL_SELLER_ACTIONS = frozenset({"potential_seller_created", "potential_seller_lead_created", "potential_seller"})
LEAD_ACTIONS = frozenset({LEAD_CREATED, LEAD_UPDATED, ACTIVITY_ADDED}) | POTENTIAL_SELLER_ACTIONS
USER_ACTIONS = frozenset({USER_UPDATED, USER_DELETED})
KNOWN_ACTIONS = LEAD_ACTIONS | USER_ACTIONS | {INTEGRATION_ENABLED, INTEGRATION_DISABLED}

# Envelope fields RG adds around the lead that describe the delivery, not the person, so they
# are not kept as lead details (`created`, `source`, `agent_*` are, as they describe the lead).
# `activities` is kept separately, appended rather than replaced.
ENVELOPE_FIELDS = frozenset({"action", "id", "site_uuid", "site_domain", "site_login_url", "partner_id", "activities"})

# Never stored: they would let a reader act as the sender. The signature is kept on purpose
# (it is only valid for this exact body, which we already hold, and a replay of it is stored
# once and changes nothing); pages show only its start.
REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
_MAX_HEADERS = 100
_MAX_HEADER_VALUE = 1000

# X-Lead-Router-Timestamp is not signed. It is believed up to this far past the request's
# arrival, as RG's clock may run a little ahead of ours; any later and a replay stamped in 2099
# would order itself after every genuine callback still to come. Within this allowance a
# request can still shadow callbacks that arrive less than this after it.
MAX_CLOCK_SKEW = timedelta(seconds=5)
# No callback is older than this. Earlier times are raised to it: they are nonsense, and before
# 1677 nanoseconds since the epoch no longer fit the 64-bit column that orders events.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# Actions whose body's `created` is the event's own time, as nothing else in the body is dated.
# In lead bodies `created` is the lead's (section 1), and a user body may be the User object.
_CREATED_IS_THE_EVENT = frozenset({INTEGRATION_ENABLED, INTEGRATION_DISABLED})


class CallbackProblem(Exception):
    """A stored callback that cannot be processed as it stands; the message tells staff why."""


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


@dataclass(frozen=True)
class Timestamp:
    """An RFC 3339 instant: `at` to the microsecond, `ns` exact (nanoseconds since the epoch)."""

    at: datetime
    ns: int

    @classmethod
    def of(cls, at: datetime) -> "Timestamp":
        whole_seconds = int(at.replace(microsecond=0).timestamp())
        return cls(at=at.astimezone(UTC), ns=whole_seconds * 1_000_000_000 + at.microsecond * 1000)


def parse_timestamp(text: str) -> Optional[Timestamp]:
    """`2016-12-24T01:58:52.789337607Z` (0-9 fractional digits, Z or an offset), or None."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zulu, sign, off_h, off_m = match.groups()[6:]
    nanos = int((fraction or "0").ljust(9, "0"))
    try:
        if zulu:
            tz = UTC
        else:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            tz = timezone(-offset if sign == "-" else offset)
        at = datetime(year, month, day, hour, minute, second, nanos // 1000, tzinfo=tz).astimezone(UTC)
        whole_seconds = int(at.replace(microsecond=0).timestamp())
    except (ValueError, OverflowError):
        # Out of range, also once moved to UTC (0001-01-01T00:00:00+01:00).
        return None
    return Timestamp(at=at, ns=whole_seconds * 1_000_000_000 + nanos)


def normalise_uuid(value: object) -> Optional[uuid.UUID]:
    """A UUID from RG's text, which may come without dashes or in capitals; None if it is not one."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        return None


def clean_text(value: str, limit: int) -> str:
    """`value` cut to `limit` characters, without NULs (PostgreSQL text cannot hold them)."""
    return value.replace("\x00", "")[:limit]


def without_nuls(value: Any) -> Any:
    """A decoded JSON value with NULs dropped from every string (PostgreSQL jsonb rejects them)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [without_nuls(v) for v in value]
    if isinstance(value, dict):
        return {str(k).replace("\x00", ""): without_nuls(v) for k, v in value.items()}
    return value


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers worth keeping with a stored request: credentials replaced, sizes bounded."""
    kept: dict[str, str] = {}
    for name, value in list(headers.items())[:_MAX_HEADERS]:
        name = clean_text(str(name), 100)
        kept[name] = "[redacted]" if name.lower() in REDACTED_HEADERS else clean_text(str(value), _MAX_HEADER_VALUE)
    return kept


@dataclass(frozen=True)
class Envelope:
    """What a stored callback says about itself, read from a decoded JSON body."""

    action: str
    site_uuid: Optional[uuid.UUID]
    lead_id: Optional[uuid.UUID]
    warning: str = ""
    """What the unsigned action header said that was not followed, for staff."""


def read_envelope(header_action: str, body: Optional[Mapping[str, Any]]) -> Envelope:
    """The action, site UUID and lead id. The action is the signed body's `action`; the unsigned
    X-Lead-Router-Action only names it when the body does not (or the body is not JSON).

    A header that disagrees with the body is overruled, not refused: the signature proves RG
    sent this body, and a replay under another header must mean what the body means. Refusing
    instead would let whoever delivers a signed body first under a wrong header decide that the
    genuine delivery is a replay of a refused request.
    """
    body = body or {}
    body_action = body.get("action")
    signed = clean_text(body_action.strip(), 64) if isinstance(body_action, str) else ""
    header = clean_text(header_action.strip(), 64)
    warning = ""
    if signed and header and header != signed:
        warning = f"{ACTION_HEADER} said {header!r}; the signed body says {signed!r}, which was followed."
    return Envelope(
        action=signed or header,
        site_uuid=normalise_uuid(body.get("site_uuid")),
        lead_id=normalise_uuid(body.get("id")),
        warning=warning,
    )


def _clamped(at: datetime, earliest: datetime, latest: datetime) -> datetime:
    return min(max(at, earliest), latest)


def event_time(
    *, action: str, header_raw: str, body: Optional[Mapping[str, Any]], arrived: datetime
) -> tuple[Optional[Timestamp], str]:
    """When the callback happened, as far as it can be trusted, and a warning for staff when the
    unsigned X-Lead-Router-Timestamp was not believed as sent. None: order it by its arrival.

    A signed time wins: an integration callback's `created`. Otherwise the header, raised to the
    body's `created` (a callback does not predate what it describes) and capped at the arrival
    plus MAX_CLOCK_SKEW, so that no header can order a request after callbacks still to come.
    """
    latest = arrived + MAX_CLOCK_SKEW
    created_raw = (body or {}).get("created")
    created = parse_timestamp(created_raw) if isinstance(created_raw, str) else None
    header = parse_timestamp(header_raw)
    future = header is not None and header.at > latest
    if created is not None and action in _CREATED_IS_THE_EVENT:
        at = _clamped(created.at, EARLIEST, latest)
        # The header is not used; one stamped in the future is still worth a look (a replay?).
        note = f"{TIMESTAMP_HEADER} {header_raw} is later than the request arrived; ordered by the body's created."
        return (created if at == created.at else Timestamp.of(at)), (note if future else "")
    if header is None:
        return None, ""
    earliest = max(EARLIEST, created.at) if created is not None else EARLIEST
    at = _clamped(header.at, earliest, latest)
    if at == header.at:
        return header, ""
    if future:
        why = f"is later than the request arrived ({int(MAX_CLOCK_SKEW.total_seconds())} s allowed for clocks)"
    elif created is not None and header.at < created.at:
        why = "is earlier than the body's created"
    else:
        why = f"is earlier than {EARLIEST:%Y}"
    return Timestamp.of(at), f"{TIMESTAMP_HEADER} {header_raw} {why}; ordered as of {at.isoformat()}."
