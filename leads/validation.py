"""Real Geeks' rules for Incoming Leads API bodies (REALGEEKS_API.md), as pure functions.

Both the push API (which must refuse what RG would refuse, before storing anything) and the
sandbox (which stands in for RG) call these, so the two can never disagree.

Every validator returns a fresh copy of the objects it checked, values as given: unknown extra
fields pass through untouched and nothing is added (the caller sets `id` and `created`). Every
failure is a `PayloadError` carrying RG's status and an RG-style message naming the field.

Where RG's docs are silent we chose, and the choices live here:
- `null` counts as absent for every optional field.
- Counts are JSON integers or strings of ASCII digits (optionally signed) within int64;
  `2.5`, `2.0`, `"2.5"`, `""` and booleans are refused.
- Prices and coordinates are JSON numbers or plain decimal strings (`"25000.99"`, `"-1.5e3"`).
- `last_sold_date` is a `YYYY-MM-DD` date; an RFC 3339 timestamp is accepted too.
- Unknown activity types are accepted: RG adds types over time.
- A partial update (PATCH) accepts `""` for any lead field but `activities`: v2 reads it as
  "unset the field".
- Bodies are refused (400) when nested deeper than MAX_DEPTH or when they hold text no database
  can store (NUL characters, unpaired UTF-16 surrogates), so nothing accepted fails later.
"""

import datetime
import json
import math
import re
import sys
import uuid
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 64
ROLES = ("Buyer", "Seller", "Buyer and Seller", "Renter")
KNOWN_ACTIVITY_TYPES = (
    "visited",
    "search_performed",
    "saved_search_added",
    "saved_search_removed",
    "property_viewed",
    "contact_emailed",
    "note",
    "was_assigned",
    "was_unassigned",
    "waiting_for_manual_assignment",
    "created_a_followup_for",
    "completed_a_followup_for",
)
# The fields that identify a person; a new lead needs at least one of them.
IDENTIFYING_FIELDS = (
    "email",
    "second_email",
    "first_name",
    "last_name",
    "phone",
    "phone2",
    "address",
    "street_address",
)

_INT64_MAX = 2**63 - 1
_FLOAT_MAX = sys.float_info.max
_INTEGER_STRING = re.compile(r"[+-]?[0-9]+")
_NUMBER_STRING = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_TIMESTAMP = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]{1,9}))?(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Only bodies that contain one of these escapes can hold text a database refuses.
_SUSPECT_ESCAPE = re.compile(rb"\\u(0000|[dD][89a-fA-F])")


class PayloadError(Exception):
    """A request body RG would refuse: `.status` 400 (not JSON we can read) or 422 (a field did
    not validate, or the body has the wrong shape), `.message` in RG's wording.

    `.where` locates the offending value (e.g. `activities[1].property.full_baths`) for people
    reading a failure; it is not part of RG's message.
    """

    def __init__(self, message: str, status: int = 422, *, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.where = where


class _Invalid(Exception):
    """A value failed one check; the caller turns `reason` into an RG-style message."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


Check = Callable[[Any], None]


def parse_json(body: bytes) -> Any:
    """The JSON value in `body`; a 400 PayloadError when it is not UTF-8 JSON we can store."""
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as e:
        # ValueError covers bad UTF-8, bad syntax, NaN/Infinity and over-long integers.
        raise PayloadError("Request body is not valid JSON.", 400) from e
    suspect = _SUSPECT_ESCAPE.search(body) is not None
    # Each level of nesting opens with a "[" or "{" byte, so a body with no more of them than
    # MAX_DEPTH cannot be too deep. A lead has a handful; the walk it skips was about 70% of this
    # function's time in a push's profile.
    if suspect or body.count(b"[") + body.count(b"{") > MAX_DEPTH:
        _check_storable(data, suspect=suspect)
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _check_storable(data: Any, *, suspect: bool) -> None:
    """Refuse nesting deeper than MAX_DEPTH and, when `suspect`, text PostgreSQL cannot store."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            children = value
        else:
            if suspect and isinstance(value, str) and not _storable_text(value):
                raise PayloadError("Request body contains a NUL character or an unpaired surrogate.", 400)
            continue
        if depth > MAX_DEPTH:
            raise PayloadError(f"Request body is nested deeper than {MAX_DEPTH} levels.", 400)
        stack.extend((child, depth + 1) for child in children)


def _storable_text(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Checks on single values. Each raises _Invalid with the end of a sentence.


def _string(value: Any) -> None:
    if not isinstance(value, str):
        raise _Invalid("must be a string.")


def _uuid(value: Any) -> None:
    # uuid.UUID() also takes non-ASCII digits (it calls int()); RG would not.
    if not isinstance(value, str) or not value.isascii():
        raise _Invalid("is not a valid UUID.")
    try:
        uuid.UUID(value)
    except ValueError as e:
        raise _Invalid("is not a valid UUID.") from e


def _email(value: Any) -> None:
    _string(value)
    if value and not _EMAIL.fullmatch(value):
        raise _Invalid("is not a valid email address.")


def _role(value: Any) -> None:
    if not isinstance(value, str) or value not in ROLES:
        raise _Invalid(f"must be one of: {', '.join(ROLES)}.")


def _string_list(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Invalid("must be a list of strings.")


def _timestamp(value: Any) -> None:
    if not isinstance(value, str) or not _valid_timestamp(value):
        raise _Invalid("is not a valid timestamp.")


def _valid_timestamp(text: str) -> bool:
    match = _TIMESTAMP.fullmatch(text)
    if not match:
        return False
    zone = match["zone"].upper()
    offset = "+00:00" if zone == "Z" else zone
    # datetime takes at most 6 fractional digits; RG sends up to 9.
    fraction = (match["fraction"] or "0")[:6]
    try:
        datetime.datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction:0<6}{offset}")
    except ValueError:
        return False
    return True


def _date(value: Any) -> None:
    if not isinstance(value, str):
        raise _Invalid("is not a valid date.")
    if _DATE.fullmatch(value):
        try:
            datetime.date.fromisoformat(value)
        except ValueError as e:
            raise _Invalid("is not a valid date.") from e
    elif not _valid_timestamp(value):
        raise _Invalid("is not a valid date.")


def _integer(value: Any) -> None:
    if isinstance(value, bool):
        raise _Invalid("is not a valid integer.")
    if isinstance(value, str) and _INTEGER_STRING.fullmatch(value):
        value = int(value)
    if not isinstance(value, int) or abs(value) > _INT64_MAX:
        raise _Invalid("is not a valid integer.")


def _number(value: Any) -> None:
    if isinstance(value, bool):
        raise _Invalid("is not a valid number.")
    if isinstance(value, str) and _NUMBER_STRING.fullmatch(value):
        value = float(value)
    if isinstance(value, int):
        value = float(value) if abs(value) <= _FLOAT_MAX else math.inf
    if not isinstance(value, float) or not math.isfinite(value):
        raise _Invalid("is not a valid number.")


def _boolean(value: Any) -> None:
    if not isinstance(value, bool):
        raise _Invalid("must be true or false.")


def _object(value: Any) -> None:
    if not isinstance(value, dict):
        raise _Invalid("must be an object.")


def _user_id(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
        raise _Invalid("must be a string or a number.")


LEAD_FIELDS: dict[str, Check] = {
    "id": _uuid,
    "source": _string,
    "source_details": _string,
    "email": _email,
    "second_email": _email,
    "first_name": _string,
    "last_name": _string,
    "phone": _string,
    "phone2": _string,
    "address": _string,
    "street_address": _string,
    "city": _string,
    "state": _string,
    "zip": _string,
    "role": _role,
    "region": _string,
    "notes": _string,
    "tags": _string_list,
    "created": _timestamp,
}
ACTIVITY_FIELDS: dict[str, Check] = {
    "type": _string,
    "source": _string,
    "description": _string,
    "created": _timestamp,
    "notify_users": _boolean,
    "metadata": _object,
}
PROPERTY_FIELDS: dict[str, Check] = {
    "mls": _string,
    "url": _string,
    "street_address": _string,
    "city": _string,
    "state": _string,
    "zip": _string,
    "beds": _integer,
    "full_baths": _integer,
    "half_baths": _integer,
    "type": _string,
    "sqft": _integer,
    "listing_price": _number,
    "listing_status": _string,
    "listing_days_on_market": _integer,
    "estimated_value": _number,
    "last_sold_date": _date,
    "last_sold_price": _number,
    "tags": _string_list,
    "latitude": _number,
    "longitude": _number,
}
USER_FIELDS: dict[str, Check] = {"id": _user_id, "role": _string, "name": _string, "email": _email}


def _check_fields(
    data: dict[str, Any], checks: dict[str, Check], *, label: str, where: str, blank_ok: bool = False
) -> dict[str, Any]:
    """A copy of `data` after checking each known, present, non-null field."""
    for name, check in checks.items():
        value = data.get(name)
        if value is None or (blank_ok and value == ""):
            continue
        try:
            check(value)
        except _Invalid as e:
            raise PayloadError(f"{label} '{name}' {e.reason}", where=_join(where, name)) from None
    return dict(data)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def validate_lead(data: Any, *, partial: bool = False) -> dict[str, Any]:
    """A checked copy of a Lead: a new one (`source` and one identifying field required) or, with
    `partial`, the fields of an update, where `""` is accepted for any field."""
    if not isinstance(data, dict):
        raise PayloadError("Lead must be a JSON object.")
    lead = _check_fields(data, LEAD_FIELDS, label="Field", where="", blank_ok=partial)
    if not partial:
        if not lead.get("source"):
            raise PayloadError("Field 'source' is required.", where="source")
        if not any(lead.get(name) for name in IDENTIFYING_FIELDS):
            raise PayloadError(f"Lead must have at least one of: {', '.join(IDENTIFYING_FIELDS)}.")
    if lead.get("activities") is not None:
        lead["activities"] = _activity_list(lead["activities"], label="Field 'activities'", where="activities")
    return lead


def validate_activities(data: Any) -> list[dict[str, Any]]:
    """Checked copies of a JSON list of Activity objects (the body of "add activities")."""
    return _activity_list(data, label="Activities", where="")


def _activity_list(data: Any, *, label: str, where: str) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise PayloadError(f"{label} must be a list of activities.", where=where)
    return [validate_activity(item, where=f"{where}[{i}]") for i, item in enumerate(data)]


def validate_activity(data: Any, *, where: str = "") -> dict[str, Any]:
    """A checked copy of one Activity; `where` (e.g. `activities[2]`) prefixes `PayloadError.where`."""
    if not isinstance(data, dict):
        raise PayloadError("Activity must be a JSON object.", where=where)
    activity = _check_fields(data, ACTIVITY_FIELDS, label="Activity field", where=where)
    if not activity.get("type"):
        raise PayloadError("Activity field 'type' is required.", where=_join(where, "type"))
    if activity.get("property") is not None:
        activity["property"] = _nested(activity["property"], PROPERTY_FIELDS, "Property", _join(where, "property"))
    if activity.get("user") is not None:
        user = _nested(activity["user"], USER_FIELDS, "User", _join(where, "user"))
        if user.get("id") is None:
            raise PayloadError("User field 'id' is required.", where=_join(where, "user.id"))
        activity["user"] = user
    return activity


def _nested(data: Any, checks: dict[str, Check], label: str, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        name = where.rsplit(".", 1)[-1]
        raise PayloadError(f"Activity field '{name}' must be an object.", where=where)
    return _check_fields(data, checks, label=f"{label} field", where=where)


def validate_potential_seller(data: Any) -> dict[str, Any]:
    """A checked copy of a potential seller lead: `id`, `created` and `activities`, of which at
    least one is a `property_viewed` carrying a property. Other fields pass through."""
    if not isinstance(data, dict):
        raise PayloadError("Potential seller lead must be a JSON object.")
    lead = _check_fields(data, {"id": _uuid, "created": _timestamp}, label="Field", where="")
    if lead.get("activities") is None:
        raise PayloadError("Field 'activities' is required.", where="activities")
    lead["activities"] = _activity_list(lead["activities"], label="Field 'activities'", where="activities")
    if not any(a["type"] == "property_viewed" and a.get("property") for a in lead["activities"]):
        raise PayloadError(
            "Potential seller lead needs a 'property_viewed' activity with a property.", where="activities"
        )
    return lead
