"""The engineer's view of a delivery attempt: the request headers the portal sent and the
response headers RG answered with (secrets redacted), the body as a cURL command, what changed
in the body since the previous attempt, and the line of the field RG's error message names.
Pure functions over stored values: no query."""

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any, Optional

from django.conf import settings

from leads import realgeeks
from leads.headers import REDACTED, is_secret
from leads.models import DeliveryAttempt
from portal.curl import curl_command

# RG names a field in quotes ("Property field 'full_baths' is not a valid integer.") or, in
# older messages, as the message's first word ("email is invalid").
_QUOTED = re.compile(r"'([A-Za-z_][\w.\[\]]*)'")
_LEADING = re.compile(r"^([A-Za-z_]\w*) (?:is|are|must|should|has|cannot|can't)\b")
_KEY_LINE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)":')


@dataclass(frozen=True)
class Line:
    """One line of a diff or of a body: its text and its class ("add", "del", "ctx", "hunk";
    "offending" or "" for a body line)."""

    kind: str
    text: str


def request_headers(*, has_body: bool, router_destinations: str) -> list[tuple[str, str]]:
    """The headers leads.realgeeks sends with a delivery's call, rebuilt (attempts do not store
    headers), with the Basic credentials redacted."""
    headers = [("Accept", "application/json"), ("User-Agent", realgeeks.USER_AGENT)]
    if has_body:
        headers.append(("Content-Type", realgeeks.JSON_CONTENT_TYPE))
    headers.extend(realgeeks.delivery_headers(router_destinations=router_destinations))
    headers.append(("Authorization", f"Basic {REDACTED}"))
    return headers


@dataclass(frozen=True)
class ResponseHeaders:
    """RG's response headers as the page lists them, or `note` saying why there are none."""

    headers: list[tuple[str, str]]
    note: str


def response_headers(attempt: DeliveryAttempt) -> ResponseHeaders:
    """The attempt's stored response headers, by name. Stored already redacted (leads.headers);
    redacted again here, so a row written some other way still shows no secret."""
    if attempt.bodies_pruned_at is not None:
        # The prune wrote its note, with the age that applied then, where the body was.
        body = attempt.response_body
        days = settings.RETENTION_ATTEMPT_BODY_DAYS
        return ResponseHeaders([], body if body.startswith("(pruned") else f"(pruned after {days} days)")
    if attempt.response_status is None:
        in_progress = attempt.outcome == DeliveryAttempt.Outcome.STARTED
        return ResponseHeaders([], "(in progress)" if in_progress else "(no answer came)")
    stored: Any = attempt.response_headers
    if not isinstance(stored, dict) or not stored:
        # Every HTTP answer has some headers: none means the attempt predates storing them.
        return ResponseHeaders([], "(not recorded)")
    shown = [(str(name), REDACTED if is_secret(str(name)) else str(value)) for name, value in stored.items()]
    return ResponseHeaders(sorted(shown, key=lambda pair: pair[0].lower()), "")


def pretty(text: str) -> str:
    """JSON indented with sorted keys (so diffs show changes, not reordering); other text as it is."""
    try:
        return json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False)
    except ValueError:
        return text


def body_diff(before: str, after: str) -> list[Line]:
    """A unified diff of two bodies, pretty-printed; empty when they are the same."""
    lines = difflib.unified_diff(pretty(before).splitlines(), pretty(after).splitlines(), lineterm="", n=2)
    diff = []
    for text in lines:
        if text.startswith(("---", "+++")):
            continue
        kind = {"@": "hunk", "+": "add", "-": "del"}.get(text[:1], "ctx")
        diff.append(Line(kind, text))
    return diff


def named_field(response_body: str, body: str) -> Optional[str]:
    """The key of the request body that RG's error message names, if it names one the body has."""
    message = realgeeks.error_message(response_body) if response_body else ""
    keys = {match[1] for match in map(_KEY_LINE.match, pretty(body).splitlines()) if match}
    candidates = [name.rsplit(".", 1)[-1].split("[", 1)[0] for name in _QUOTED.findall(message)]
    leading = _LEADING.match(message)
    if leading:
        candidates.append(leading[1])
    return next((name for name in candidates if name in keys), None)


def body_lines(body: str, field: Optional[str]) -> list[Line]:
    """The body pretty-printed, a line per item, the lines of `field`'s key marked "offending"."""
    lines = []
    for text in pretty(body).splitlines():
        match = _KEY_LINE.match(text)
        lines.append(Line("offending" if field and match and match[1] == field else "", text))
    return lines


def attempt_curl(*, method: str, url: str, body: str, router_destinations: str) -> str:
    headers = request_headers(has_body=bool(body), router_destinations=router_destinations)
    return curl_command(method=method, url=url, headers=headers, body=body)
