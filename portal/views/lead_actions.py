"""Staff actions on one lead: resend, edit and resend, patch, add an activity, assign an agent,
and cancel or retry one of its deliveries.

Every change is a POST (the CSRF middleware checks it), on a lead of a partner the user may see
(404 otherwise), and writes its audit entry in the action's own transaction. New deliveries go
through the outbox and are published on commit; the web request never calls RG itself, except
for the site's agent list (cached).
"""

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from core.access import acting_user, staff_required
from leads.models import Delivery, Lead
from leads.services import DeliveryStateError
from leads.staff_services import (
    FieldChange,
    LeadChangedError,
    NothingChangedError,
    delivery_cancel,
    delivery_retry,
    lead_activity_add,
    lead_assign,
    lead_edit_resend,
    lead_patch,
    lead_resend_checked,
    lead_version,
    site_agents,
)
from leads.validation import PayloadError
from portal.forms.leads import ActivityForm, AssignForm, LeadEditForm, LeadFieldsForm, LeadPatchForm
from portal.views.leads import lead_or_404

ChangeResult = tuple[Delivery, list[FieldChange]]

CHANGED_MEANWHILE = (
    "Someone changed this lead while you were editing it. The form now compares your values with "
    "its current data: check them and submit again."
)

RESEND_REFUSED = (
    "Not resent: Real Geeks would refuse this lead as a new one ({problem}). A lead known only from "
    "updates may lack fields a new lead needs: add them here, then send it with “Edit and resend”."
)


def _to_lead(lead: Lead) -> HttpResponse:
    return redirect("portal:lead_detail", slug=lead.partner.slug, lead_id=lead.lead_id)


@require_POST
@staff_required
def lead_resend(request: HttpRequest, slug: str, lead_id: uuid.UUID) -> HttpResponse:
    lead = lead_or_404(request, slug, lead_id)
    try:
        delivery = lead_resend_checked(lead=lead, actor=acting_user(request))
    except PayloadError as error:
        messages.error(request, RESEND_REFUSED.format(problem=error.message))
        return redirect("portal:lead_edit", slug=lead.partner.slug, lead_id=lead.lead_id)
    messages.success(
        request, f"Resent under the same lead id as delivery #{delivery.sequence}; it goes out through the queue."
    )
    return _to_lead(lead)


def _fields_page(request: HttpRequest, template: str, lead: Lead, form: LeadFieldsForm, **extra: Any) -> HttpResponse:
    context = {"lead": lead, "partner": lead.partner, "form": form, "section": "leads", **extra}
    return render(request, template, context)


def _form_again(
    request: HttpRequest, form_class: type[LeadFieldsForm], slug: str, lead_id: uuid.UUID
) -> LeadFieldsForm:
    """The submitted values again, compared with the lead as it is now, saying why."""
    lead = lead_or_404(request, slug, lead_id)
    data = request.POST.copy()
    data["version"] = lead_version(lead)
    form = form_class(data, lead=lead)
    form.is_valid()
    form.add_error(None, CHANGED_MEANWHILE)
    return form


def _change(
    request: HttpRequest, lead: Lead, form: LeadFieldsForm, change: Callable[..., ChangeResult]
) -> ChangeResult:
    """Run an edit service (`lead_edit_resend` or `lead_patch`) on the form's fields; it audits
    what it changed. Raises what the service raises."""
    return change(
        lead=lead,
        edited=form.edited(),
        actor=acting_user(request),
        expected_version=form.cleaned_data["version"] or None,
        reason=form.cleaned_data["reason"],
    )


@require_http_methods(["GET", "POST"])
@staff_required
def lead_edit(request: HttpRequest, slug: str, lead_id: uuid.UUID) -> HttpResponse:
    """Edit and resend, in two steps: the first POST shows what will change, the second sends."""
    lead = lead_or_404(request, slug, lead_id)
    template = "portal/lead_edit.html"
    if request.method == "GET":
        return _fields_page(request, template, lead, LeadEditForm(lead=lead, initial={"version": lead_version(lead)}))
    form = LeadEditForm(request.POST, lead=lead)
    if not form.is_valid() or "back" in request.POST:
        return _fields_page(request, template, lead, form)
    if request.POST.get("confirm") != "1":
        return _fields_page(request, template, lead, form, preview=True)
    try:
        delivery, changes = _change(request, lead, form, lead_edit_resend)
    except (LeadChangedError, NothingChangedError, PayloadError):
        return _fields_page(request, template, lead, _form_again(request, LeadEditForm, slug, lead_id))
    fields = ", ".join(c.field for c in changes)
    messages.success(request, f"Changed {fields} and resent the lead as delivery #{delivery.sequence}.")
    return _to_lead(lead)


@require_http_methods(["GET", "POST"])
@staff_required
def lead_patch_view(request: HttpRequest, slug: str, lead_id: uuid.UUID) -> HttpResponse:
    """Patch: the changed fields go to RG as an update; nothing else is sent."""
    lead = lead_or_404(request, slug, lead_id)
    template = "portal/lead_patch.html"
    if request.method == "GET":
        return _fields_page(request, template, lead, LeadPatchForm(lead=lead, initial={"version": lead_version(lead)}))
    form = LeadPatchForm(request.POST, lead=lead)
    if not form.is_valid():
        return _fields_page(request, template, lead, form)
    try:
        delivery, changes = _change(request, lead, form, lead_patch)
    except (LeadChangedError, NothingChangedError, PayloadError):
        return _fields_page(request, template, lead, _form_again(request, LeadPatchForm, slug, lead_id))
    fields = ", ".join(c.field for c in changes)
    messages.success(request, f"Sent {fields} to Real Geeks as an update (delivery #{delivery.sequence}).")
    return _to_lead(lead)


@require_http_methods(["GET", "POST"])
@staff_required
def lead_activity(request: HttpRequest, slug: str, lead_id: uuid.UUID) -> HttpResponse:
    lead = lead_or_404(request, slug, lead_id)
    form = ActivityForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        delivery = lead_activity_add(lead=lead, activity=form.activity, actor=acting_user(request))
        messages.success(request, f"Added a “{form.activity['type']}” activity (delivery #{delivery.sequence}).")
        return _to_lead(lead)
    context = {"lead": lead, "partner": lead.partner, "form": form, "section": "leads"}
    return render(request, "portal/lead_activity.html", context)


@require_http_methods(["GET", "POST"])
@staff_required
def lead_assign_view(request: HttpRequest, slug: str, lead_id: uuid.UUID) -> HttpResponse:
    """Assign to one of the site's agents: RG's users list, or the agents callbacks told us of."""
    lead = lead_or_404(request, slug, lead_id)
    agents = site_agents(partner=lead.partner, site_uuid=lead.site.site_uuid)
    form = AssignForm(request.POST if request.method == "POST" else None, agents=agents)
    if request.method == "POST" and form.is_valid():
        agent = form.agents[form.cleaned_data["agent"]]
        delivery = lead_assign(lead=lead, user_id=agent.id, agent_name=agent.name, actor=acting_user(request))
        messages.success(
            request,
            f"Assigning the lead to {agent.name or agent.id} (was_assigned activity, delivery #{delivery.sequence}).",
        )
        return _to_lead(lead)
    context = {"lead": lead, "partner": lead.partner, "form": form, "agents": agents, "section": "leads"}
    return render(request, "portal/lead_assign.html", context)


def _delivery_or_404(lead: Lead, delivery_id: uuid.UUID) -> Delivery:
    return get_object_or_404(Delivery, lead=lead, public_id=delivery_id)


@require_POST
@staff_required
def delivery_cancel_view(request: HttpRequest, slug: str, lead_id: uuid.UUID, delivery_id: uuid.UUID) -> HttpResponse:
    lead = lead_or_404(request, slug, lead_id)
    delivery = _delivery_or_404(lead, delivery_id)
    try:
        delivery = delivery_cancel(delivery=delivery, actor=acting_user(request))
    except DeliveryStateError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Cancelled delivery #{delivery.sequence}; it will not be sent.")
    return _to_lead(lead)


@require_POST
@staff_required
def delivery_retry_view(request: HttpRequest, slug: str, lead_id: uuid.UUID, delivery_id: uuid.UUID) -> HttpResponse:
    lead = lead_or_404(request, slug, lead_id)
    delivery = _delivery_or_404(lead, delivery_id)
    try:
        delivery = delivery_retry(delivery=delivery, actor=acting_user(request))
    except DeliveryStateError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Retrying delivery #{delivery.sequence} now, with a fresh set of attempts.")
    return _to_lead(lead)
