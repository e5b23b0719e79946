"""Grant emails. Every way in (inbound webhook, mailbox poll, file import, staff paste, the
sandbox) ends in `grant_email_store` (`grant_email_paste` for a paste): keep the raw message once,
parse it, grant what it names, or leave it for staff as "needs review" (never dropped).

Anyone can send an email. The automatic ways in (webhook, mailbox) grant only when the trusted
receiving server authenticated Real Geeks as the sender (grants/sender_auth.py); an import and a
paste are a person's decision and grant anyway. Every message records what the check found.
"""

import hashlib
import re
import uuid
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from typing import Any, NamedTuple, Optional

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.audit import audit_person_action
from grants.models import GrantEmail, Partner, Site
from grants.parsing import FoundSite, ParsedGrantEmail, parse_grant_email
from grants.sender_auth import SenderCheck, sender_check
from grants.services import site_grant

_PLUS_ADDRESS = re.compile(r"^[^@+]+\+([^@]+)@")
_LOOKS_LIKE_MESSAGE = re.compile(r"\A(?:[!-9;-~]+:[^\n]*\n)+", re.ASCII)
_MESSAGE_HEADERS = re.compile(r"^(?:from|subject|message-id|received|to|date|mime-version):", re.IGNORECASE | re.M)
_LOOKS_LIKE_HTML = re.compile(r"<(?:html|body|table|div|p|br)\b", re.IGNORECASE)
PASTE_SUBJECT = "Grant text pasted by staff"


class GrantEmailProblem(Exception):
    """A staff action on a grant email that cannot be done as asked; the message says why."""


class StoredGrantEmail(NamedTuple):
    """A message as it is stored, and whether this call stored it (False: it was stored before,
    and is returned as it was)."""

    grant_email: GrantEmail
    created: bool


def _dedupe_key(parsed: ParsedGrantEmail, raw: bytes) -> str:
    if parsed.message_id and len(parsed.message_id) <= 255:
        return parsed.message_id
    if parsed.message_id:
        return "message-id-sha256:" + hashlib.sha256(parsed.message_id.encode()).hexdigest()
    # No Message-ID (pasted text, some hand-made files): the same bytes are the same message.
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def grant_email_partner(parsed: ParsedGrantEmail, envelope_recipients: Sequence[str] = ()) -> Optional[Partner]:
    """Which partner a message is for: a recipient is its grant email address, or the plus-address
    part of a recipient is its slug, or a grant URL carries its company id, or it is the only one."""
    partners = Partner.objects.filter(is_active=True)
    addresses = [a.strip().lower() for a in (*envelope_recipients, *parsed.recipients) if a and "@" in a]
    if addresses:
        by_address = Q()
        for address in addresses:
            by_address |= Q(grant_email_address__iexact=address)
        if partner := partners.exclude(grant_email_address="").filter(by_address).first():
            return partner
        slugs = [m.group(1) for a in addresses if (m := _PLUS_ADDRESS.match(a))]
        if slugs and (partner := partners.filter(slug__in=slugs).first()):
            return partner
    if parsed.company_ids:
        matching = list(partners.exclude(rg_company_id="").filter(rg_company_id__in=parsed.company_ids)[:2])
        if len(matching) == 1:
            return matching[0]
    only = list(partners[:2])
    return only[0] if len(only) == 1 else None


def decided_by_a_person(source: str) -> bool:
    """An operator's import and a staff member's paste grant whoever sent them: a person chose to.
    So does the sandbox's delivery, a developer's command, but only while the sandbox is on (off by
    default in production); every other source is automatic and must be verified."""
    if source == GrantEmail.Source.SANDBOX:
        return bool(settings.SANDBOX_ENABLED)
    return source in (GrantEmail.Source.IMPORT, GrantEmail.Source.PASTE)


def _record_sender_check(grant_email: GrantEmail, raw: bytes) -> SenderCheck:
    """Check who sent `raw` and record it on `grant_email` (not saved)."""
    checked = sender_check(
        raw,
        trusted_authserv_ids=settings.GRANT_EMAIL_TRUSTED_AUTHSERV_IDS,
        sender_domains=settings.GRANT_EMAIL_SENDER_DOMAINS,
    )
    grant_email.sender_verification = (
        GrantEmail.SenderVerification.VERIFIED if checked.verified else GrantEmail.SenderVerification.NOT_VERIFIED
    )
    grant_email.sender_verification_detail = checked.detail
    return checked


def _review_reason(parsed: ParsedGrantEmail, partner: Optional[Partner], *, source: str, sender: SenderCheck) -> str:
    reasons = []
    if not sender.verified and not decided_by_a_person(source):
        reasons.append(f"Sender not verified: {sender.detail}.")
    if not parsed.readable:
        reasons.append("No text could be read from this message.")
    elif not parsed.sites:
        reasons.append("No site UUID was found in this message.")
    if partner is None:
        reasons.append("Could not tell which partner this message is for.")
    return " ".join(reasons)


def _site_json(site: FoundSite) -> dict[str, str]:
    return {"site_uuid": str(site.site_uuid), "name": site.name[:200], "domain": site.domain[:253]}


def _grant_sites(
    grant_email: GrantEmail, partner: Partner, sites: Sequence[FoundSite], *, actor: Optional[User], note: str
) -> None:
    for site in sites:
        site_grant(
            partner=partner,
            site_uuid=site.site_uuid,
            source=Site.Source.EMAIL,
            name=site.name[:200],
            domain=site.domain[:253],
            note=note,
            actor=actor,
            grant_email=grant_email,
        )


def grant_email_receive(
    raw: bytes,
    *,
    source: str,
    partner: Optional[Partner] = None,
    envelope_recipients: Sequence[str] = (),
    actor: Optional[User] = None,
) -> GrantEmail:
    """Keep a grant email once (by Message-ID) and grant the sites it names.

    A message seen before is returned as it was stored. When no site or no partner can be read,
    the message is kept with status needs review and a reason for staff.
    """
    return grant_email_store(
        raw, source=source, partner=partner, envelope_recipients=envelope_recipients, actor=actor
    ).grant_email


@transaction.atomic
def grant_email_store(
    raw: bytes,
    *,
    source: str,
    partner: Optional[Partner] = None,
    envelope_recipients: Sequence[str] = (),
    actor: Optional[User] = None,
) -> StoredGrantEmail:
    """`grant_email_receive`, also saying whether this call stored the message."""
    parsed, key, existing = _read(raw)
    if existing is not None:
        return StoredGrantEmail(existing, created=False)
    partner = partner or grant_email_partner(parsed, envelope_recipients)
    return _store_new(raw, parsed, key=key, source=source, partner=partner, actor=actor)


def _read(raw: bytes) -> tuple[ParsedGrantEmail, str, Optional[GrantEmail]]:
    """The message parsed, its dedupe key, and the message already stored under that key, if any."""
    parsed = parse_grant_email(raw)
    key = _dedupe_key(parsed, raw)
    return parsed, key, GrantEmail.objects.filter(dedupe_key=key).first()


def _store_new(
    raw: bytes, parsed: ParsedGrantEmail, *, key: str, source: str, partner: Optional[Partner], actor: Optional[User]
) -> StoredGrantEmail:
    """Store a message not stored before and grant its sites, or leave it needing review."""
    grant_email = GrantEmail(
        partner=partner,
        source=source,
        dedupe_key=key,
        message_id=parsed.message_id[:255],
        subject=parsed.subject[:255],
        sender=parsed.sender[:255],
        recipients=list(parsed.recipients)[:50],
        raw=raw[: settings.GRANT_EMAIL_STORE_MAX_BYTES],
        raw_size=len(raw),
        sites=[_site_json(site) for site in parsed.sites],
        created_by=actor,
    )
    sender = _record_sender_check(grant_email, raw)
    reason = _review_reason(parsed, partner, source=source, sender=sender)
    grant_email.status = GrantEmail.Status.NEEDS_REVIEW if reason else GrantEmail.Status.GRANTED
    grant_email.review_reason = reason
    try:
        with transaction.atomic():
            grant_email.save()
    except IntegrityError:
        # The same message arrived twice at once (two pollers, a provider retry).
        return StoredGrantEmail(GrantEmail.objects.get(dedupe_key=key), created=False)
    if partner is not None and not reason:
        _grant_sites(grant_email, partner, parsed.sites, actor=actor, note=f"grant email: {parsed.subject}"[:500])
    return StoredGrantEmail(grant_email, created=True)


def grant_email_snapshot(grant_email: GrantEmail) -> dict[str, Any]:
    """What an audit entry shows of a message: its status, its partner and the sites it grants."""
    return {
        "status": grant_email.status,
        "partner": grant_email.partner.slug if grant_email.partner else None,
        "sites": [entry["site_uuid"] for entry in grant_email.sites],
    }


def _pasted_message(text: str) -> bytes:
    """Pasted text as a message: as it is when it is a whole message, else wrapped in one."""
    normalised = text.replace("\r\n", "\n").lstrip()
    if _LOOKS_LIKE_MESSAGE.match(normalised) and _MESSAGE_HEADERS.search(normalised.split("\n\n", 1)[0]):
        return normalised.encode("utf-8")
    message = EmailMessage(policy=policy.default)
    # No Date or Message-ID, so pasting the same text twice is recognised as one message.
    message["Subject"] = PASTE_SUBJECT
    message.set_content(text, subtype="html" if _LOOKS_LIKE_HTML.search(text) else "plain")
    return message.as_bytes()


@transaction.atomic
def grant_email_paste(
    *,
    text: str,
    partner: Optional[Partner] = None,
    actor: Optional[User] = None,
    only_for: Optional[QuerySet[Partner]] = None,
) -> Optional[StoredGrantEmail]:
    """Text staff pasted (a whole message, or just the part with the site) read like an email, for
    `partner`, or else for the partner it names (`grant_email_partner`).

    With `only_for` (the partners the person pasting looks after), a new message is stored only
    when it is for one of them; for another partner, or for none that could be told, nothing is
    written and the answer is None. A message stored before is returned whoever it is for: the
    caller decides what to show of it.
    """
    raw = _pasted_message(text)
    parsed, key, existing = _read(raw)
    if existing is not None:
        return StoredGrantEmail(existing, created=False)
    chosen = partner is not None
    partner = partner or grant_email_partner(parsed)
    if only_for is not None and (partner is None or not only_for.filter(pk=partner.pk).exists()):
        return None
    stored = _store_new(raw, parsed, key=key, source=GrantEmail.Source.PASTE, partner=partner, actor=actor)
    if stored.created:
        after = {**grant_email_snapshot(stored.grant_email), "partner_from": "chosen" if chosen else "detected"}
        audit_person_action(
            actor=actor,
            action="grant_email.paste",
            obj=stored.grant_email,
            partner=stored.grant_email.partner,
            after=after,
        )
    return stored


@transaction.atomic
def grant_email_resolve(
    *,
    grant_email: GrantEmail,
    partner: Partner,
    site_uuids: Sequence[uuid.UUID],
    actor: Optional[User],
    name: str = "",
    note: str = "",
) -> GrantEmail:
    """Staff read a message the parser could not: grant the sites they name and close it."""
    if not site_uuids:
        raise GrantEmailProblem("Give at least one site UUID, or dismiss the message.")
    grant_email = GrantEmail.objects.select_for_update().get(pk=grant_email.pk)
    if grant_email.status not in (GrantEmail.Status.NEEDS_REVIEW, GrantEmail.Status.DISMISSED):
        raise GrantEmailProblem(f"This message is already {grant_email.get_status_display().lower()}.")
    before = grant_email_snapshot(grant_email)
    sites = [FoundSite(site_uuid=u, name=name) for u in dict.fromkeys(site_uuids)]
    grant_email.partner = partner
    grant_email.sites = [_site_json(site) for site in sites]
    grant_email.status = GrantEmail.Status.RESOLVED
    grant_email.resolved_by, grant_email.resolved_at = actor, timezone.now()
    grant_email.save()
    _grant_sites(grant_email, partner, sites, actor=actor, note="grant email resolved by staff")
    audit_person_action(
        actor=actor,
        action="grant_email.resolve",
        obj=grant_email,
        partner=grant_email.partner,
        before=before,
        after=grant_email_snapshot(grant_email),
        reason=note,
    )
    return grant_email


@transaction.atomic
def grant_email_dismiss(*, grant_email: GrantEmail, actor: Optional[User], reason: str = "") -> GrantEmail:
    """Staff decided a message grants nothing (spam, a duplicate by hand): keep it, closed."""
    grant_email = GrantEmail.objects.select_for_update().get(pk=grant_email.pk)
    if grant_email.status != GrantEmail.Status.NEEDS_REVIEW:
        raise GrantEmailProblem(f"This message is {grant_email.get_status_display().lower()}, not waiting for review.")
    before = {"status": grant_email.status}
    grant_email.status = GrantEmail.Status.DISMISSED
    grant_email.review_reason = (grant_email.review_reason + (f" Dismissed: {reason}" if reason else "")).strip()
    grant_email.resolved_by, grant_email.resolved_at = actor, timezone.now()
    grant_email.save()
    audit_person_action(
        actor=actor,
        action="grant_email.dismiss",
        obj=grant_email,
        partner=grant_email.partner,
        before=before,
        after={"status": grant_email.status},
        reason=reason,
    )
    return grant_email


@transaction.atomic
def grant_email_reparse(*, grant_email: GrantEmail, actor: Optional[User] = None) -> GrantEmail:
    """Read a needs-review message again (after the parser learned more, or a partner was added)."""
    grant_email = GrantEmail.objects.select_for_update().get(pk=grant_email.pk)
    if grant_email.status != GrantEmail.Status.NEEDS_REVIEW:
        raise GrantEmailProblem("Only a message waiting for review is read again.")
    if grant_email.raw_truncated:
        raise GrantEmailProblem("Only the start of this message was kept; resolve it by hand.")
    before = grant_email_snapshot(grant_email)
    raw = bytes(grant_email.raw)
    parsed = parse_grant_email(raw)
    partner = grant_email.partner or grant_email_partner(parsed)
    # Checked again: reading again must not grant a message the webhook or the mailbox would not.
    sender = _record_sender_check(grant_email, raw)
    reason = _review_reason(parsed, partner, source=grant_email.source, sender=sender)
    grant_email.partner = partner
    grant_email.sites = [_site_json(site) for site in parsed.sites]
    grant_email.review_reason = reason
    if partner is not None and not reason:
        grant_email.status = GrantEmail.Status.GRANTED
        grant_email.save()
        _grant_sites(grant_email, partner, parsed.sites, actor=None, note=f"grant email: {parsed.subject}"[:500])
    else:
        grant_email.save()
    audit_person_action(
        actor=actor,
        action="grant_email.reparse",
        obj=grant_email,
        partner=grant_email.partner,
        before=before,
        after=grant_email_snapshot(grant_email),
    )
    return grant_email
