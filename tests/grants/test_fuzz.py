"""Property-based fuzzing of the webhook and the grant-email parser (Hypothesis).

Whatever arrives: never a 500, never an exception other than the defined ones, and nothing
accepted is ever lost (an acknowledged callback or a received email is stored, and its
processing ends in a recorded state).
"""

import hashlib
import json
import re
import uuid
from email import policy
from email.message import EmailMessage

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grants import destination
from grants.emails import grant_email_receive
from grants.htmltext import html_to_text
from grants.models import GrantEmail, WebhookEvent
from grants.parsing import parse_grant_email

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# What an unexpected exception looks like once recorded ("KeyError: ..."); defined problems read as sentences.
UNEXPECTED = re.compile(r"^\w+(?:Error|Exception)\b")
FINISHED = {
    WebhookEvent.State.PROCESSED,
    WebhookEvent.State.IGNORED,
    WebhookEvent.State.FAILED,
    WebhookEvent.State.INVALID,
}

header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80)
uuid_text = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: str(u).upper()),
    st.text(max_size=40),
    st.integers(),
    st.none(),
)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30))
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
actions = st.one_of(st.sampled_from(sorted(destination.KNOWN_ACTIONS)), header_text)
rg_bodies = st.fixed_dictionaries(
    {"action": actions, "site_uuid": uuid_text, "id": uuid_text},
    optional={
        "partner_id": json_value,
        "site_domain": json_value,
        "first_name": json_value,
        "phone": st.sampled_from(["", "808-123-1234"]),
        "activities": json_value,
        "user": json_value,
        "email": st.text(max_size=30),
    },
).map(lambda body: json.dumps(body).encode())
bodies = st.one_of(rg_bodies, st.binary(max_size=600), json_value.map(lambda v: json.dumps(v).encode()))


@FUZZ
@given(body=bodies, action=st.one_of(st.none(), actions), timestamp=header_text, signed=st.booleans())
def test_the_webhook_never_errors_and_keeps_everything_it_accepts(rg, partner, body, action, timestamp, signed):
    rejected_before = WebhookEvent.objects.count()
    response = rg.post(body, action=action, timestamp=timestamp, signature="sign" if signed else "0" * 64)

    assert response.status_code in (200, 400, 401)
    assert isinstance(response.json(), dict)
    if response.status_code == 401:
        assert not signed
        assert WebhookEvent.objects.count() == rejected_before
        return
    digest = hashlib.sha256(body).hexdigest()
    # One row per signed body, whatever headers came with it (or with an earlier copy of it).
    event = WebhookEvent.objects.get(partner=partner, body_sha256=digest)
    body_action = body_named_action(body)
    if body_action:
        assert event.action == body_action  # the signed body's word, never the header's
    assert bytes(event.body) == body
    assert event.state in FINISHED
    assert (response.status_code == 400) == (event.state == WebhookEvent.State.INVALID)
    if event.state == WebhookEvent.State.FAILED:
        assert not UNEXPECTED.match(event.error), event.error


def body_named_action(body: bytes) -> str:
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        decoded = None
    return destination.read_envelope("", decoded if isinstance(decoded, dict) else None).action


@FUZZ
@given(raw=st.binary(max_size=3000))
def test_the_parser_reads_any_bytes_without_raising(raw):
    parsed = parse_grant_email(raw)
    for text in (parsed.message_id, parsed.subject, parsed.sender, *parsed.recipients):
        text.encode("utf-8")  # storable: no stray surrogates
        assert "\x00" not in text


@FUZZ
@given(html=st.text(max_size=2000))
def test_html_of_any_shape_becomes_text_without_raising(html):
    text, links = html_to_text("<p>" + html)
    assert isinstance(text, str) and isinstance(links, list)


words = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=60)


@FUZZ
@given(
    site=st.uuids(version=4),
    before=words,
    after=words,
    dashless=st.booleans(),
    # Not utf-16: the stdlib cannot write it into a message correctly (it splits CRLF across code units).
    charset=st.sampled_from(["utf-8", "iso-8859-1", "cp1252", "koi8-r", "shift_jis"]),
    encoding=st.sampled_from(["base64", "quoted-printable", "8bit"]),
    html=st.booleans(),
)
def test_a_site_uuid_on_its_own_line_is_found_in_any_encoding(site, before, after, dashless, charset, encoding, html):
    shown = site.hex if dashless else str(site)
    body = f"{before}\n{shown}\n{after}"
    try:
        body.encode(charset)
    except UnicodeEncodeError:
        charset = "utf-8"
    message = EmailMessage(policy=policy.SMTP)
    message["Subject"] = "Grant"
    if html:
        escaped = body.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>")
        message.set_content(escaped, subtype="html", charset=charset, cte=encoding)
    else:
        message.set_content(body, charset=charset, cte=encoding)
    found = {s.site_uuid for s in parse_grant_email(message.as_bytes()).sites}
    assert site in found


@FUZZ
@given(raw=st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(lambda t: f"Subject: x\n\n{t}".encode())))
def test_every_received_email_is_kept(partner, raw):
    grant_email = grant_email_receive(raw, source=GrantEmail.Source.IMPORT)
    stored = GrantEmail.objects.get(pk=grant_email.pk)
    assert stored.status in (GrantEmail.Status.GRANTED, GrantEmail.Status.NEEDS_REVIEW)
    assert stored.status == GrantEmail.Status.NEEDS_REVIEW or stored.sites
    assert stored.raw_size == len(raw) or stored.dedupe_key == parse_grant_email(raw).message_id
    assert isinstance(uuid.UUID(str(stored.public_id)), uuid.UUID)
