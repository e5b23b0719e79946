"""Operations on partners, API keys and site grants.

When a person acts (`actor`), the operation records its own audit entry in its transaction;
commands, callbacks and grant emails (no actor) leave the status history only.
"""

import uuid
from collections.abc import Iterable
from typing import Any, Optional

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from core.audit import MASK_CHANGED, MASK_SET, audit_person_action, changed_fields
from grants import rg_url
from grants.audit import PARTNER_AUDITED_FIELDS, partner_snapshot, webhook_secrets_change
from grants.models import (
    PARTNER_NAME_TAKEN,
    RESERVED_SLUGS,
    ApiKey,
    GrantEmail,
    Partner,
    Site,
    SiteStatusChange,
    WebhookEvent,
)
from grants.signals import site_granted

SLUG_BASE_CHARS = 90


def partner_create(
    *,
    name: str,
    rg_username: str,
    rg_password: str,
    webhook_secret: str,
    rg_partner_id: str = "",
    rg_company_id: str = "",
    rg_api_url: str = "",
    slug: str = "",
    grant_email_address: str = "",
    is_active: bool = True,
    staff: Optional[Iterable[User]] = None,
    actor: Optional[User] = None,
    reason: str = "",
) -> Partner:
    """A new partner, with `slug` or else a unique one derived from its name.

    Raises ValidationError (nothing saved) for an invalid field, among them an `rg_api_url` the
    partner's credentials may not be sent to (grants.rg_url).
    """
    if rg_api_url and (problem := rg_url.refusal(rg_api_url)):
        raise ValidationError({"rg_api_url": problem})
    if Partner.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": PARTNER_NAME_TAKEN})
    partner = Partner(
        name=name,
        slug=slug or _slug_free(name),
        rg_username=rg_username,
        rg_password=rg_password,
        rg_partner_id=rg_partner_id,
        rg_company_id=rg_company_id,
        rg_api_url=rg_api_url,
        grant_email_address=grant_email_address,
        is_active=is_active,
    )
    partner.webhook_secrets = [webhook_secret]
    partner.full_clean()
    try:
        with transaction.atomic():
            partner.save()
            after = {**partner_snapshot(partner), "rg_password": MASK_SET, "webhook_secrets": {"count": 1}}
            if staff is not None:
                partner.staff.set(staff)
                after["staff"] = _usernames(partner)
            audit_person_action(
                actor=actor, action="partner.create", obj=partner, partner=partner, after=after, reason=reason
            )
    except IntegrityError:
        # Someone created a partner with this name or slug between the checks and the INSERT.
        raise ValidationError({"name": PARTNER_NAME_TAKEN}) from None
    return partner


def _slug_free(name: str) -> str:
    """A slug made from `name` that no partner has yet."""
    # Room for a "-NN" suffix within the slug's 100 characters, whatever the name's length.
    base = slugify(name)[:SLUG_BASE_CHARS].strip("-") or "partner"
    slug, n = base, 2
    while slug in RESERVED_SLUGS or Partner.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _usernames(partner: Partner) -> list[str]:
    return sorted(partner.staff.values_list("username", flat=True))


def partner_edit(
    partner: Partner,
    changes: dict[str, Any],
    *,
    rg_password: str = "",
    webhook_secrets: Optional[list[str]] = None,
    staff: Optional[Iterable[User]] = None,
    actor: Optional[User] = None,
    reason: str = "",
) -> tuple[Partner, bool]:
    """Apply an edit to the partner as stored: `changes` to its plain fields (those an audit entry
    shows), a new `rg_password` unless blank, and the `webhook_secrets` list and `staff` when given.
    The saved partner, and whether anything changed.

    A person's edit is audited with the fields that changed: secrets masked, webhook secrets by
    fingerprint, staff by username. An edit that changed nothing leaves no entry. Raises
    ValidationError (nothing saved) for an invalid field, among them a new RG API URL without
    the RG password given again, or no webhook secret left.
    """
    unknown = set(changes) - set(PARTNER_AUDITED_FIELDS)
    if unknown:
        raise ValueError(f"not plain partner fields: {sorted(unknown)}")
    with transaction.atomic():
        # The stored row, locked, not the caller's copy: a form has already written its values
        # into the instance it was given, and two edits at once must not lose one.
        stored = Partner.objects.select_for_update().get(pk=partner.pk)
        before, secrets_before = partner_snapshot(stored), stored.webhook_secrets
        staff_before = _usernames(stored) if staff is not None else []
        for field, value in changes.items():
            setattr(stored, field, value)
        if stored.rg_api_url != before["rg_api_url"]:
            if problem := stored.rg_api_url and rg_url.refusal(stored.rg_api_url):
                raise ValidationError({"rg_api_url": problem})
            if not rg_password:
                raise ValidationError({"rg_password": rg_url.URL_CHANGE_REFUSED})
        if rg_password:
            stored.rg_password = rg_password
        if webhook_secrets is not None:
            if not [s for s in webhook_secrets if s]:
                raise ValidationError({"webhook_secrets": "A partner keeps at least one webhook secret."})
            stored.webhook_secrets = webhook_secrets
        stored.full_clean()
        stored.save()
        changed_before, changed_after = changed_fields(before, partner_snapshot(stored))
        if rg_password:
            changed_before["rg_password"], changed_after["rg_password"] = MASK_SET, MASK_CHANGED
        if stored.webhook_secrets != secrets_before:
            secrets = webhook_secrets_change(secrets_before, stored.webhook_secrets)
            changed_before["webhook_secrets"], changed_after["webhook_secrets"] = secrets
        if staff is not None:
            stored.staff.set(staff)
            if (staff_after := _usernames(stored)) != staff_before:
                changed_before["staff"], changed_after["staff"] = staff_before, staff_after
        if changed_after:
            audit_person_action(
                actor=actor,
                action="partner.edit",
                obj=stored,
                partner=stored,
                before=changed_before,
                after=changed_after,
                reason=reason,
            )
    return stored, bool(changed_after)


def api_key_issue(*, partner: Partner, label: str = "", actor: Optional[User] = None) -> tuple[ApiKey, str]:
    """A saved key and its secret, which is returned here once and never stored."""
    key, secret = ApiKey.new(partner=partner, label=label)
    with transaction.atomic():
        key.save()
        after = {"key_id": key.key_id, "label": key.label}
        audit_person_action(actor=actor, action="api_key.issue", obj=key, partner=partner, after=after)
    return key, secret


def api_key_revoke(*, key: ApiKey, actor: Optional[User] = None, reason: str = "") -> ApiKey:
    if key.revoked_at is None:
        with transaction.atomic():
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            audit_person_action(
                actor=actor,
                action="api_key.revoke",
                obj=key,
                partner=key.partner,
                before={"revoked_at": None},
                after={"revoked_at": key.revoked_at},
                reason=reason,
            )
    return key


def _change_status(
    site: Site,
    to_status: str,
    *,
    source: str,
    note: str,
    actor: Optional[User],
    webhook_event: Optional[WebhookEvent] = None,
    grant_email: Optional[GrantEmail] = None,
) -> SiteStatusChange:
    change = SiteStatusChange.objects.create(
        site=site,
        from_status=site.status,
        to_status=to_status,
        source=source,
        note=note,
        actor=actor,
        webhook_event=webhook_event,
        grant_email=grant_email,
    )
    site.status = to_status
    site.status_changed_at = change.created
    return change


@transaction.atomic
def site_grant(
    *,
    partner: Partner,
    site_uuid: uuid.UUID,
    source: str,
    name: str = "",
    domain: str = "",
    rg_partner_id: str = "",
    note: str = "",
    actor: Optional[User] = None,
    webhook_event: Optional[WebhookEvent] = None,
    grant_email: Optional[GrantEmail] = None,
) -> Site:
    """Make the site active for the partner (creating it if new) and release its held deliveries.

    Granting an active site again only fills in names it did not have. `webhook_event` or
    `grant_email` is the evidence kept with the status change.
    """
    site, _ = Site.objects.select_for_update().get_or_create(
        partner=partner, site_uuid=site_uuid, defaults={"source": source}
    )
    site.name = site.name or name
    site.domain = site.domain or domain
    site.rg_partner_id = rg_partner_id or site.rg_partner_id
    if site.status != Site.Status.ACTIVE:
        _change_status(
            site,
            Site.Status.ACTIVE,
            source=source,
            note=note,
            actor=actor,
            webhook_event=webhook_event,
            grant_email=grant_email,
        )
        site.source = source
        site.granted_at = site.status_changed_at
        transaction.on_commit(lambda: site_granted.send(sender=Site, site=site))
    site.save()
    return site


@transaction.atomic
def site_revoke(
    *,
    site: Site,
    source: str,
    note: str = "",
    actor: Optional[User] = None,
    webhook_event: Optional[WebhookEvent] = None,
    grant_email: Optional[GrantEmail] = None,
) -> Site:
    """Withdraw the grant: new deliveries to the site are held until it is granted again."""
    site = Site.objects.select_for_update().get(pk=site.pk)
    if site.status != Site.Status.REVOKED:
        audit_person_action(
            actor=actor,
            action="site.revoke",
            obj=site,
            partner=site.partner,
            before={"status": site.status},
            after={"status": Site.Status.REVOKED},
            reason=note,
        )
        _change_status(
            site,
            Site.Status.REVOKED,
            source=source,
            note=note,
            actor=actor,
            webhook_event=webhook_event,
            grant_email=grant_email,
        )
        site.save()
    return site


@transaction.atomic
def site_mark_doubtful(*, site: Site, note: str) -> Site:
    """RG answered 401 for this site: keep sending, but show staff the grant may be gone."""
    site = Site.objects.select_for_update().get(pk=site.pk)
    if site.status == Site.Status.ACTIVE:
        _change_status(site, Site.Status.DOUBTFUL, source=site.source, note=note, actor=None)
        site.save()
    return site
