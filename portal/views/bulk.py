"""Bulk retry: choose failed or dead deliveries by filter, see how many match, confirm, then
follow the job's progress on a page that polls a small JSON endpoint."""

import uuid
from typing import Any, Optional
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from core.access import acting_user, staff_required
from grants.access import partners_visible_to
from grants.models import Partner
from leads import bulk
from leads.models import BulkRetry, BulkRetryItem, Delivery, Operation
from portal.forms.filters import DayField

FILTER_FIELDS = (
    "partner",
    "status",
    "site",
    "operation",
    "created_from",
    "created_to",
    "http_status",
    "transient_only",
)
RECENT_JOBS = 20
DETAIL_ROWS = 50
# Matched deliveries shown before the confirm button, oldest first (the order a job takes them in).
PREVIEW_ROWS = 20


class BulkRetryForm(forms.Form):
    partner = forms.ChoiceField(error_messages={"required": "Choose the partner whose deliveries to retry."})
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Failed or dead"), *((s.value, s.label) for s in bulk.BULK_STATUSES)],
    )
    site = forms.UUIDField(label="Site UUID", required=False, error_messages={"invalid": "That is not a site UUID."})
    operation = forms.ChoiceField(required=False, choices=[("", "Any operation"), *Operation.choices])
    created_from = DayField(
        label="Created from",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="UTC, inclusive.",
    )
    created_to = DayField(
        label="Created to", required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="UTC, inclusive."
    )
    http_status = forms.IntegerField(
        label="Last HTTP status",
        required=False,
        min_value=100,
        max_value=599,
        error_messages={"invalid": "Enter an HTTP status such as 422 or 503."},
        help_text="Real Geeks' answer to the last attempt, e.g. 401.",
    )
    transient_only = forms.BooleanField(
        label="5xx and timeouts only",
        required=False,
        help_text="Leave out deliveries RG refused with a 4xx: sent again unchanged, they would be refused again.",
    )

    def __init__(self, *args: Any, partners: QuerySet[Partner], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.partners = partners
        choices = [(p.slug, p.name) for p in partners]
        self.fields["partner"].choices = choices if len(choices) == 1 else [("", "Choose a partner"), *choices]  # type: ignore[attr-defined]

    def clean(self) -> Optional[dict[str, Any]]:
        data = super().clean() or {}
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", "The end date is before the start date.")
        return data

    def to_filter(self) -> bulk.BulkFilter:
        data = self.cleaned_data
        status = data["status"]
        return bulk.BulkFilter(
            partner=self.partners.get(slug=data["partner"]),
            statuses=(status,) if status else bulk.BULK_STATUSES,
            site_uuid=data["site"],
            operation=data["operation"],
            created_from=data["created_from"],
            created_to=data["created_to"],
            http_status=data["http_status"],
            transient_only=data["transient_only"],
        )


def _form(request: HttpRequest, partners: QuerySet[Partner]) -> BulkRetryForm:
    """The filter form: bound to the POST, or to the query string once it names any filter."""
    if request.method == "POST":
        return BulkRetryForm(request.POST, partners=partners)
    if not any(name in request.GET for name in FILTER_FIELDS):
        return BulkRetryForm(partners=partners)
    data = request.GET.copy()
    if not data.get("partner"):
        if len(partners) == 1:
            data["partner"] = partners[0].slug
        else:
            # A link from "All partners" (the overview's Retry…): its filter filled in, the
            # partner left to choose, and no error before anyone has chosen.
            return BulkRetryForm(
                initial={name: data[name] for name in FILTER_FIELDS if data.get(name)}, partners=partners
            )
    return BulkRetryForm(data, partners=partners)


def _jobs(user: Any) -> QuerySet[BulkRetry]:
    return BulkRetry.objects.filter(partner__in=partners_visible_to(user)).select_related("partner", "created_by")


@staff_required
@require_http_methods(["GET", "POST"])
def bulk_retry(request: HttpRequest) -> HttpResponse:
    partners = partners_visible_to(request.user)
    form = _form(request, partners)
    matched: Optional[int] = None
    preview: list[Delivery] = []
    problem = ""
    if form.is_bound and form.is_valid():
        filters = form.to_filter()
        if request.method == "POST":
            try:
                job = bulk.bulk_retry_start(filters=filters, actor=acting_user(request))
            except bulk.BulkRetryError as exc:
                problem = exc.message
            else:
                return redirect("portal:bulk_retry_detail", public_id=job.public_id)
        candidates = bulk.bulk_retry_candidates(filters=filters)
        matched = candidates.count()
        preview = list(candidates.select_related("lead")[:PREVIEW_ROWS])
    context = {
        "form": form,
        "matched": matched,
        "preview": preview,
        "preview_partner": form.cleaned_data["partner"] if matched is not None else "",
        "limit": settings.BULK_RETRY_MAX_DELIVERIES,
        "problem": problem,
        "jobs": _jobs(request.user)[:RECENT_JOBS],
        "section": "bulk",
    }
    return render(request, "portal/bulk_retry.html", context)


FILTER_LABELS = {
    "partner": "Partner",
    "status": "Status",
    "site": "Site",
    "operation": "Operation",
    "created_from": "Created from",
    "created_to": "Created to",
    "http_status": "Last HTTP status",
    "transient_only": "5xx and timeouts only",
}


def _filter_rows(job: BulkRetry) -> list[tuple[str, str]]:
    statuses = dict(Delivery.Status.choices)
    operations = dict(Operation.choices)
    rows = []
    for name, value in job.filters.items():
        if name == "status":
            value = " or ".join(statuses.get(s, s) for s in value)
        elif name == "operation":
            value = operations.get(value, value)
        elif name == "partner":
            value = job.partner.name
        elif name == "transient_only":
            value = "yes" if value else "no"
        rows.append((FILTER_LABELS.get(name, name), str(value)))
    return rows


@staff_required
@require_GET
def bulk_retry_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    job = get_object_or_404(_jobs(request.user), public_id=public_id)
    items = job.items.select_related("delivery__lead").order_by("id")
    context = {
        "job": job,
        "progress": bulk.bulk_retry_progress(job=job),
        # What needs a look, as of page load: retried deliveries that failed again, and skipped ones.
        "failed_again": items.filter(result=BulkRetryItem.Result.RETRIED, delivery__status__in=bulk.BULK_STATUSES)[
            :DETAIL_ROWS
        ],
        "skipped": items.filter(result=BulkRetryItem.Result.SKIPPED)[:DETAIL_ROWS],
        "filters": _filter_rows(job),
        "limit": settings.BULK_RETRY_MAX_DELIVERIES,
        # Each count links to its leads: the leads list's `bulk` and `bulk_result` filters.
        "leads_url": f"{reverse('portal:lead_list')}?{urlencode({'partner': job.partner.slug, 'bulk': job.public_id})}",
        "section": "bulk",
    }
    return render(request, "portal/bulk_retry_detail.html", context)


@staff_required
@require_GET
@never_cache
def bulk_retry_progress(request: HttpRequest, public_id: uuid.UUID) -> JsonResponse:
    job = _jobs(request.user).filter(public_id=public_id).first()
    if job is None:
        return JsonResponse({"error": f"No bulk retry {public_id}."}, status=404)
    return JsonResponse(bulk.bulk_retry_progress(job=job).as_json())
