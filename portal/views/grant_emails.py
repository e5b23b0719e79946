"""Grant emails for staff: the list with its "needs review" queue, one message as received, and
the actions on it (resolve by hand, dismiss, read again), plus a form to paste a message.

Scoping: a message matched to a partner is seen by that partner's staff (and superusers). A
message matched to no partner is seen by superusers only: before it is matched nobody can say
whose it is, and it may well be another partner's, so showing it to every staff user would leak
that partner's sites. A superuser resolving it chooses the partner.
"""

import email
import uuid
from email import policy
from email.message import Message
from typing import Any, Optional

from django.contrib import messages
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.access import acting_user, staff_required
from core.models import AuditEntry
from core.paging import received_page, row_by_public_id
from grants.access import partners_visible_to
from grants.emails import (
    GrantEmailProblem,
    decided_by_a_person,
    grant_email_dismiss,
    grant_email_paste,
    grant_email_reparse,
    grant_email_resolve,
)
from grants.htmltext import html_to_text
from grants.models import GrantEmail, Site
from grants.parsing import parse_grant_email
from portal.forms.grants import (
    NO_PARTNER,
    GrantEmailDismissForm,
    GrantEmailFilterForm,
    GrantEmailPasteForm,
    GrantEmailResolveForm,
)

PAGE_SIZE = 50
# What a page shows of one message; the whole message stays stored (up to its own limit).
SHOWN_RAW_CHARS = 200_000
SHOWN_PART_CHARS = 100_000
SHOWN_HEADERS = 200
SHOWN_PARTS = 50


def _visible_grant_emails(user: User | AnonymousUser) -> QuerySet[GrantEmail]:
    if isinstance(user, User) and user.is_superuser:
        return GrantEmail.objects.all()
    return GrantEmail.objects.filter(partner__in=partners_visible_to(user))


def _may_see(user: User, grant_email: GrantEmail) -> bool:
    if user.is_superuser:
        return True
    return grant_email.partner is not None and partners_visible_to(user).filter(pk=grant_email.partner.pk).exists()


def _grant_email_or_404(request: HttpRequest, public_id: uuid.UUID) -> GrantEmail:
    return get_object_or_404(_visible_grant_emails(request.user).select_related("partner"), public_id=public_id)


@staff_required
def grant_email_list(request: HttpRequest) -> HttpResponse:
    partners = partners_visible_to(request.user).order_by("name")
    form = GrantEmailFilterForm(request.GET or None, partners=partners, include_unmatched=request.user.is_superuser)
    visible = _visible_grant_emails(request.user)
    status, partner_slug = "", ""
    if form.is_bound and form.is_valid():
        status, partner_slug = form.cleaned_data["status"], form.cleaned_data["partner"]
    elif form.is_bound:
        # A filter naming a partner the user cannot see (or a made-up status) matches nothing.
        visible = visible.none()
    if partner_slug == NO_PARTNER:
        visible = visible.filter(partner__isnull=True)
    elif partner_slug:
        visible = visible.filter(partner__slug=partner_slug)
    counts = dict(visible.order_by().values_list("status").annotate(n=Count("id")))
    rows = visible.filter(status=status) if status else visible
    # The raw message can be megabytes; the list never needs it.
    rows = rows.select_related("partner").defer("raw")
    older_than = row_by_public_id(_visible_grant_emails(request.user), request.GET.get("older_than", ""))
    page, last = received_page(rows, older_than, PAGE_SIZE)
    query = request.GET.copy()
    query.pop("older_than", None)
    context = {
        "form": form,
        "grant_emails": page,
        "status": status,
        "partner_slug": partner_slug,
        "tabs": [(value, label, counts.get(value, 0)) for value, label in GrantEmail.Status.choices],
        "total": sum(counts.values()),
        "next_cursor": last.public_id if last else None,
        "filter_query": query.urlencode(),
        "paged": older_than is not None,
        "section": "grant_emails",
    }
    return render(request, "portal/grant_email_list.html", context)


def _header_text(message: Message, name: str, raw_value: str) -> str:
    try:
        value = str(message.policy.header_fetch_parse(name, raw_value))
    except Exception:  # a header too broken to decode (hostile mail) is shown as it came
        value = raw_value
    return " ".join(value.split())


def _part_text(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError, AssertionError, KeyError):
        # An unknown charset or a broken transfer encoding: the bytes as UTF-8, errors marked.
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


def message_for_display(raw: bytes) -> dict[str, Any]:
    """A stored message as staff read it: decoded headers, and each part as text.

    HTML is never rendered: an HTML part is shown as the text the parser read from it, with its
    source as plain (escaped) text, so a message cannot run script or load a tracking pixel.
    """
    message = email.message_from_bytes(raw, policy=policy.default)
    headers = [(name, _header_text(message, name, value)) for name, value in message.raw_items()][:SHOWN_HEADERS]
    parts: list[dict[str, Any]] = []
    try:
        leaves = [part for part in message.walk() if not part.is_multipart()][:SHOWN_PARTS]
    except RecursionError:
        # Parts nested beyond Python's recursion limit: only hostile mail does that.
        leaves = []
    for part in leaves:
        payload = part.get_payload(decode=True)
        shown: dict[str, Any] = {
            "content_type": part.get_content_type(),
            "filename": part.get_filename() or "",
            "size": len(payload) if isinstance(payload, bytes) else 0,
        }
        if part.get_content_maintype() == "text":
            text = _part_text(part)
            if part.get_content_type() == "text/html":
                shown["html_source"] = text[:SHOWN_PART_CHARS]
                text = html_to_text(text)[0]
            shown["text"] = text[:SHOWN_PART_CHARS]
            shown["cut"] = len(text) > SHOWN_PART_CHARS
        parts.append(shown)
    return {"headers": headers, "parts": parts}


def _paste_entry(audit: list[AuditEntry]) -> Optional[AuditEntry]:
    return next((entry for entry in audit if entry.action == "grant_email.paste"), None)


def match_reason(grant_email: GrantEmail, company_ids: tuple[str, ...], audit: list[AuditEntry]) -> str:
    """Why the message belongs to its partner, in the words of the rules `grant_email_partner` applies.

    Only the evidence that was stored can be named: an inbound webhook's envelope recipient and
    an import's --partner option are not kept, so those read as "given with the message".
    """
    partner = grant_email.partner
    if partner is None:
        return (
            "Nothing names a partner: no recipient is a partner's grant email address or plus-address "
            "(grants+slug@), and no link carries a partner's RG company id."
        )
    if grant_email.status == GrantEmail.Status.RESOLVED and grant_email.resolved_by:
        return f"Chosen by {grant_email.resolved_by} when resolving the message by hand."
    pasted = _paste_entry(audit)
    if pasted is not None and (pasted.after or {}).get("partner_from") == "chosen":
        return f"Chosen by {pasted.actor or 'staff'} when pasting the message."
    recipients = [address.lower() for address in grant_email.recipients]
    address = partner.grant_email_address.lower()
    if address and address in recipients:
        return f"It was sent to {partner.grant_email_address}, this partner's grant email address."
    plus = next((r for r in recipients if f"+{partner.slug}@" in r), None)
    if plus:
        return f"It was sent to {plus}: the part after “+” is this partner's slug."
    if partner.rg_company_id and partner.rg_company_id in company_ids:
        return f"It links to this partner's RG grant page (company id {partner.rg_company_id})."
    if pasted is not None:
        return "Detected when pasted: it was the only active partner."
    return (
        f"Nothing in the message names this partner: it was given with the message ({grant_email.get_source_display()}"
        ", e.g. the envelope recipient or an import's --partner), or it was the only active partner then."
    )


def _found_sites(grant_email: GrantEmail) -> list[dict[str, Any]]:
    """What the parser (or staff) read, with the site each UUID now is for the message's partner."""
    existing: dict[str, Site] = {}
    if grant_email.partner is not None:
        uuids = [entry["site_uuid"] for entry in grant_email.sites]
        existing = {str(s.site_uuid): s for s in grant_email.partner.sites.filter(site_uuid__in=uuids)}
    return [{**entry, "site": existing.get(entry["site_uuid"])} for entry in grant_email.sites]


def _resolve_initial(grant_email: GrantEmail) -> dict[str, Any]:
    names = {entry["name"] for entry in grant_email.sites if entry.get("name")}
    return {
        "partner": grant_email.partner.slug if grant_email.partner else None,
        "site_uuids": "\n".join(entry["site_uuid"] for entry in grant_email.sites),
        "name": names.pop() if len(names) == 1 else "",
    }


def _render_detail(
    request: HttpRequest,
    grant_email: GrantEmail,
    resolve_form: Optional[GrantEmailResolveForm] = None,
    dismiss_form: Optional[GrantEmailDismissForm] = None,
) -> HttpResponse:
    raw = bytes(grant_email.raw)
    audit = list(
        AuditEntry.objects.filter(object_type="grantemail", object_id=str(grant_email.public_id))
        .select_related("actor")
        .order_by("created", "id")
    )
    partners = partners_visible_to(request.user).order_by("name")
    context = {
        "grant_email": grant_email,
        "partner": grant_email.partner,
        "message": message_for_display(raw),
        "raw_text": grant_email.raw_text[:SHOWN_RAW_CHARS],
        "raw_cut": len(raw) > SHOWN_RAW_CHARS,
        "found_sites": _found_sites(grant_email),
        "match_reason": match_reason(grant_email, parse_grant_email(raw).company_ids, audit),
        "status_changes": grant_email.status_changes.select_related("site__partner", "actor"),
        "audit": audit,
        "decided_by_a_person": decided_by_a_person(grant_email.source),
        "can_resolve": grant_email.status in (GrantEmail.Status.NEEDS_REVIEW, GrantEmail.Status.DISMISSED),
        "needs_review": grant_email.status == GrantEmail.Status.NEEDS_REVIEW,
        "resolve_form": resolve_form or GrantEmailResolveForm(partners=partners, initial=_resolve_initial(grant_email)),
        "dismiss_form": dismiss_form or GrantEmailDismissForm(),
        "section": "grant_emails",
    }
    return render(request, "portal/grant_email_detail.html", context)


@staff_required
def grant_email_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    return _render_detail(request, _grant_email_or_404(request, public_id))


@staff_required
@require_POST
def grant_email_resolve_view(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    grant_email = _grant_email_or_404(request, public_id)
    form = GrantEmailResolveForm(request.POST, partners=partners_visible_to(request.user).order_by("name"))
    if not form.is_valid():
        return _render_detail(request, grant_email, resolve_form=form)
    try:
        grant_email = grant_email_resolve(
            grant_email=grant_email,
            partner=form.cleaned_data["partner"],
            site_uuids=form.cleaned_data["site_uuids"],
            name=form.cleaned_data["name"],
            note=form.cleaned_data["note"],
            actor=acting_user(request),
        )
    except GrantEmailProblem as exc:
        # A message, not a form error: the form is not shown once a message is no longer open.
        messages.error(request, str(exc))
        return _render_detail(request, grant_email, resolve_form=form)
    count = len(grant_email.sites)
    messages.success(request, f"Resolved: {count} site{'s' if count != 1 else ''} granted to {grant_email.partner}.")
    return redirect("portal:grant_email_detail", public_id=grant_email.public_id)


@staff_required
@require_POST
def grant_email_dismiss_view(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    grant_email = _grant_email_or_404(request, public_id)
    form = GrantEmailDismissForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, grant_email, dismiss_form=form)
    try:
        grant_email = grant_email_dismiss(
            grant_email=grant_email, actor=acting_user(request), reason=form.cleaned_data["reason"]
        )
    except GrantEmailProblem as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Dismissed: the message is kept and grants nothing.")
    return redirect("portal:grant_email_detail", public_id=grant_email.public_id)


@staff_required
@require_POST
def grant_email_reparse_view(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    grant_email = _grant_email_or_404(request, public_id)
    try:
        grant_email = grant_email_reparse(grant_email=grant_email, actor=acting_user(request))
    except GrantEmailProblem as exc:
        messages.error(request, str(exc))
    else:
        if grant_email.status == GrantEmail.Status.GRANTED:
            messages.success(request, "Read again: its sites are granted.")
        else:
            messages.warning(request, f"Read again; it still needs review. {grant_email.review_reason}")
    return redirect("portal:grant_email_detail", public_id=grant_email.public_id)


def _outcome_message(request: HttpRequest, grant_email: GrantEmail) -> None:
    if grant_email.status == GrantEmail.Status.GRANTED:
        names = ", ".join(entry["name"] or entry["site_uuid"] for entry in grant_email.sites)
        messages.success(request, f"Granted to {grant_email.partner}: {names}.")
    else:
        messages.warning(request, f"Needs review: {grant_email.review_reason}")


@staff_required
def grant_email_paste_view(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    partners = partners_visible_to(user).order_by("name")
    # Staff of one partner paste for that partner; detection is for those who see several.
    initial = {"partner": partners[0].slug} if not user.is_superuser and len(partners) == 1 else {}
    form = GrantEmailPasteForm(request.POST or None, partners=partners, initial=initial)
    if request.method == "POST" and form.is_valid():
        chosen = form.chosen_partner()
        stored = grant_email_paste(
            text=form.cleaned_data["text"],
            partner=chosen,
            actor=user,
            # Staff paste for the partners they see; a superuser also for none (left for review).
            only_for=None if user.is_superuser else partners,
        )
        if stored is None:
            form.add_error("partner", "Could not tell which of your partners this message is for: choose one.")
        elif stored.created:
            _outcome_message(request, stored.grant_email)
            return redirect("portal:grant_email_detail", public_id=stored.grant_email.public_id)
        elif _may_see(user, stored.grant_email):
            received_at = stored.grant_email.received_at
            messages.info(request, f"This message was stored before, on {received_at:%Y-%m-%d %H:%M}; here it is.")
            return redirect("portal:grant_email_detail", public_id=stored.grant_email.public_id)
        else:
            form.add_error(
                "text",
                "This exact message was stored before, for a partner you cannot see; ask a superuser to look at it.",
            )
    return render(request, "portal/grant_email_paste.html", {"form": form, "section": "grant_emails"})
