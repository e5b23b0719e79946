"""The leads list as CSV: the same filters and partner scoping as /leads/, streamed a row at a
time, so an export of a million leads holds one chunk of rows in memory, never the file."""

import csv
from collections.abc import Iterator
from typing import Any

from django.db.models import OuterRef, Subquery
from django.db.models.fields.json import KT
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.access import staff_required
from grants.access import partners_visible_to
from leads.models import Delivery
from portal.forms.leads import LeadFilterForm
from portal.views.leads import leads_matching

# Rows read per database round trip (a server-side cursor on PostgreSQL).
CHUNK_SIZE = 2000
# The last error is cut here: the lead's page has it whole.
ERROR_MAX_CHARS = 200
HEADER = (
    "lead id",
    "partner",
    "site",
    "status",
    "operation",
    "name",
    "email",
    "phone",
    "source",
    "created",
    "last status code",
    "last error",
)
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    """A value as CSV text that no spreadsheet runs: a leading apostrophe defuses a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


class _Echo:
    """A file for csv.writer that hands each written line back instead of keeping it."""

    def write(self, value: str) -> str:
        return value


def _lines(rows: Iterator[tuple[Any, ...]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(HEADER)
    for (
        lead_id,
        partner,
        site_name,
        site_uuid,
        status,
        operation,
        name,
        email,
        phone,
        source,
        created,
        code,
        error,
    ) in rows:
        yield writer.writerow(
            [
                cell(value)
                for value in (
                    lead_id,
                    partner,
                    site_name or site_uuid,
                    status,
                    operation,
                    name,
                    email,
                    phone,
                    source,
                    created.isoformat(),
                    code,
                    (error or "")[:ERROR_MAX_CHARS],
                )
            ]
        )


@require_GET
@staff_required
def lead_export(request: HttpRequest) -> HttpResponse:
    """CSV of the leads /leads/ would list for these filters, newest first, every page at once."""
    partners = list(partners_visible_to(request.user).order_by("name"))
    form = LeadFilterForm(request.GET, partners=partners)
    if not form.is_valid():
        # 400: the same filters on /leads/ show what to fix.
        return HttpResponseBadRequest("Fix the filters on the leads page first.", content_type="text/plain")
    latest_operation = Delivery.objects.filter(lead=OuterRef("pk")).order_by("-sequence").values("operation")[:1]
    rows = (
        leads_matching(request, partners, form)
        # The source alone, not the whole lead body: the database extracts it.
        .annotate(latest_operation=Subquery(latest_operation), source=KT("data__source"))
        .order_by("-created", "-id")
        .values_list(
            "lead_id",
            "partner__name",
            "site__name",
            "site__site_uuid",
            "status",
            "latest_operation",
            "name",
            "email",
            "phone",
            "source",
            "created",
            "last_status_code",
            "last_error",
        )
        .iterator(chunk_size=CHUNK_SIZE)
    )
    response = StreamingHttpResponse(_lines(rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="leads-{stamp}.csv"'
    # staff_required is typed for HttpResponse; a StreamingHttpResponse passes through it unchanged.
    return response  # type: ignore[return-value]
