"""Forms of the leads pages. Lead and activity fields are checked with RG's own rules
(leads.validation), so a form refuses what RG would refuse, next to the field it is about, and a
bound form shows back exactly what was typed."""

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any, Optional

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from grants.models import Partner
from leads import stats
from leads.bulk import BULK_STATUSES
from leads.models import BulkRetry, BulkRetryItem, Delivery, Lead, Operation
from leads.staff_services import (
    EDITABLE_FIELDS,
    FieldChange,
    SiteAgents,
    lead_changes,
    lead_edited_data,
)
from leads.validation import (
    KNOWN_ACTIVITY_TYPES,
    ROLES,
    PayloadError,
    validate_activity,
    validate_lead,
)
from portal.forms.filters import DayField
from portal.validators import validate_phone

# RG names the field in its message ("Field 'email' is not a valid email address."); the form
# shows the message under the field's own label, so the name is dropped there.
_FIELD_NAMED = re.compile(r"^(?:\w+ )?[Ff]ield '[^']*' ")
# RG's Property counts: sent as integers once they passed RG's integer rule.
_COUNT_FIELDS = ("beds", "full_baths", "half_baths", "sqft")
# RG takes any string; a changed phone must also look like one (portal.validators).
PHONE_FIELDS = ("phone", "phone2")


def _human(message: str) -> str:
    rest = _FIELD_NAMED.sub("", message)
    return message if rest == message else f"This {rest}"


def add_payload_error(form: forms.Form, error: PayloadError, field_for: dict[str, str]) -> None:
    """Put RG's complaint under the form field it is about (`field_for` maps RG's `where` to a
    field name), or at the top of the form when no field is."""
    field = field_for.get(error.where)
    if field is not None:
        form.add_error(field, _human(error.message))
    else:
        form.add_error(None, error.message)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def _text(max_length: int = 200, *, label: str = "", help_text: str = "", textarea: bool = False) -> forms.CharField:
    widget = forms.Textarea(attrs={"rows": 3}) if textarea else forms.TextInput()
    return forms.CharField(
        required=False, max_length=max_length, label=label or None, help_text=help_text, widget=widget
    )


class LeadFieldsForm(forms.Form):
    """RG's lead fields, filled from the lead's current data. Values stay as typed: RG's rules,
    not Django's field types, decide what is valid."""

    source = _text(label="Source", help_text="The sending product's name, shown to agents. Required by RG.")
    source_details = _text(label="Source details")
    email = _text(254, label="Email")
    second_email = _text(254, label="Second email")
    first_name = _text(label="First name")
    last_name = _text(label="Last name")
    phone = _text(64, label="Phone", help_text="e.g. 808-123-1234, (808) 123-1234 or +55 83 1234-1234")
    phone2 = _text(64, label="Second phone")
    address = _text(500, label="Address", help_text="One formatted line.")
    street_address = _text(label="Street address")
    city = _text(label="City")
    state = _text(label="State")
    zip = _text(20, label="ZIP")
    role = forms.ChoiceField(required=False, choices=[("", "—"), *((role, role) for role in ROLES)])
    region = _text(label="Region")
    notes = _text(5000, label="Notes", textarea=True)
    tags = _text(1000, label="Tags", help_text="Separated by commas.")

    def __init__(self, *args: Any, lead: Lead, **kwargs: Any) -> None:
        current = {name: _as_text(lead.data.get(name)) for name in EDITABLE_FIELDS}
        kwargs["initial"] = {**current, **kwargs.get("initial", {})}
        super().__init__(*args, **kwargs)
        self.lead = lead
        self.changes: list[FieldChange] = []

    def edited(self) -> dict[str, Any]:
        """The typed values in the lead's shapes: tags as a list of strings."""
        values: dict[str, Any] = {name: self.cleaned_data.get(name, "") for name in EDITABLE_FIELDS}
        values["tags"] = [tag.strip() for tag in values["tags"].split(",") if tag.strip()]
        return values

    def _checked_changes(self) -> list[FieldChange]:
        """The changes of the fields Django found valid, each checked with RG's rule for its
        field (and the phone rule), so every invalid field is marked at once. A field with an
        error is left out of the changes."""
        edited = {name: value for name, value in self.edited().items() if name not in self.errors}
        changes = lead_changes(self.lead.data, edited)
        if not changes and not self.errors:
            self.add_error(None, "Nothing changed: edit at least one field.")
        valid = []
        for change in changes:
            if change.after is not None:
                try:
                    validate_lead({change.field: change.after}, partial=True)
                    if change.field in PHONE_FIELDS:
                        validate_phone(change.after)
                except PayloadError as error:
                    add_payload_error(self, error, LEAD_FIELD_FOR)
                    continue
                except ValidationError as error:
                    self.add_error(change.field, error)
                    continue
            valid.append(change)
        return valid


# RG's `where` for a top-level lead field is its name, which is also the form field's.
LEAD_FIELD_FOR = {name: name for name in EDITABLE_FIELDS}


class LeadEditForm(LeadFieldsForm):
    """Edit and resend: the whole lead must pass RG's rules for a new lead."""

    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why you are changing and resending this lead (kept in the audit trail).",
        error_messages={"required": "Say why you are changing this lead: the reason is kept with the change."},
    )
    version = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.changes = self._checked_changes()
        if self.changes or self.errors:
            try:
                validate_lead(lead_edited_data(self.lead.data, self.changes))
            except PayloadError as error:
                # A whole-lead rule (source, one identifying field), unless a marked field explains it.
                if not (error.where in self.errors or (not error.where and self.errors)):
                    add_payload_error(self, error, LEAD_FIELD_FOR)
        return cleaned


class LeadPatchForm(LeadFieldsForm):
    """Patch: only the changed fields are sent, and they must pass RG's rules for an update."""

    reason = forms.CharField(
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional: why (kept in the audit trail).",
    )
    version = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.changes = self._checked_changes()
        return cleaned


# Assignment has its own action (with the site's agents to choose from).
ACTIVITY_TYPES = [t for t in KNOWN_ACTIVITY_TYPES if t not in ("was_assigned", "was_unassigned")]


EMPTY_ACTIVITY = "Write a description or fill in the property: an empty activity is not sent."


class ActivityForm(forms.Form):
    type = forms.ChoiceField(choices=[(t, t.replace("_", " ").capitalize()) for t in ACTIVITY_TYPES], initial="note")
    description = _text(5000, label="Description", textarea=True)
    property_mls = _text(label="MLS number")
    property_url = _text(500, label="Listing URL")
    property_street_address = _text(label="Street address")
    property_city = _text(label="City")
    property_state = _text(label="State")
    property_zip = _text(20, label="ZIP")
    property_type = _text(label="Property type", help_text="e.g. Condo")
    property_beds = _text(20, label="Beds")
    property_full_baths = _text(20, label="Full baths", help_text="A whole number.")
    property_half_baths = _text(20, label="Half baths", help_text="A whole number.")
    property_sqft = _text(20, label="Square feet")
    property_listing_price = _text(40, label="Listing price")
    property_listing_status = _text(label="Listing status", help_text="e.g. For Sale")

    FIELD_FOR = {"type": "type", "description": "description"} | {
        f"property.{name}": f"property_{name}"
        for name in (
            "mls",
            "url",
            "street_address",
            "city",
            "state",
            "zip",
            "type",
            "beds",
            "full_baths",
            "half_baths",
            "sqft",
            "listing_price",
            "listing_status",
        )
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.activity: dict[str, Any] = {}

    def property_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("property_")]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        prop = {
            name.removeprefix("property_"): value
            for name, value in cleaned.items()
            if name.startswith("property_") and value
        }
        if not prop and not cleaned.get("description") and "description" not in self.errors:
            # RG accepts a bare type, but from this form that is a slip, not a note worth sending.
            self.add_error("description", EMPTY_ACTIVITY)
        for name, value in prop.items():  # each property field on its own, so all errors show at once
            try:
                validate_activity({"type": "note", "property": {name: value}})
            except PayloadError as error:
                add_payload_error(self, error, self.FIELD_FOR)
        if self.errors:
            return cleaned
        activity: dict[str, Any] = {"type": cleaned["type"]}
        if cleaned["description"]:
            activity["description"] = cleaned["description"]
        if prop:
            activity["property"] = prop
        try:
            checked = validate_activity(activity)
        except PayloadError as error:
            add_payload_error(self, error, self.FIELD_FOR)
            return cleaned
        for name in _COUNT_FIELDS:
            if name in checked.get("property", {}):
                checked["property"][name] = int(checked["property"][name])
        self.activity = checked
        return cleaned


class AssignForm(forms.Form):
    agent = forms.ChoiceField(label="Agent", error_messages={"invalid_choice": "Choose one of the site's agents."})

    def __init__(self, *args: Any, agents: SiteAgents, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["agent"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "Choose an agent…"), *((agent.id, agent.label) for agent in agents.agents)]
        self.agents = {agent.id: agent for agent in agents.agents}


SITE_UUID_INVALID = (
    "That is not a site UUID. It looks like 5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70 "
    "(32 hexadecimal digits, usually in groups of 8-4-4-4-12)."
)


# The bulk retry page's counts, as the leads list filters them (leads.bulk.bulk_retry_progress
# counts the same way): which of the job's deliveries, by the job's result and their status now.
BULK_RESULTS = {
    "retried": ("Sent to be retried", Q(result=BulkRetryItem.Result.RETRIED)),
    "skipped": ("Skipped", Q(result=BulkRetryItem.Result.SKIPPED)),
    "delivered": (
        "Delivered since",
        Q(result=BulkRetryItem.Result.RETRIED, delivery__status=Delivery.Status.DELIVERED),
    ),
    "failed_again": (
        "Failed again",
        Q(result=BulkRetryItem.Result.RETRIED, delivery__status__in=BULK_STATUSES),
    ),
    "in_flight": (
        "Still in flight",
        Q(result=BulkRetryItem.Result.RETRIED)
        & ~Q(delivery__status__in=[Delivery.Status.DELIVERED, Delivery.Status.CANCELLED, *BULK_STATUSES]),
    ),
}
NOT_A_BULK_RETRY = "That is not a bulk retry of a partner you can see: open it from the bulk retry page."
NOT_A_BULK_RESULT = "That is not one of the bulk retry page's counts: open it from the bulk retry page."


class LeadFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Email, name, phone, lead id or site UUID"}),
    )
    partner = forms.ChoiceField(required=False)
    site = forms.UUIDField(
        required=False,
        label="Site UUID",
        error_messages={"invalid": SITE_UUID_INVALID},
        widget=forms.TextInput(attrs={"spellcheck": "false"}),
    )
    status = forms.ChoiceField(required=False, choices=[("", "Any"), *Lead.Status.choices])
    operation = forms.ChoiceField(required=False, choices=[("", "Any"), *Operation.choices])
    http_status = forms.IntegerField(
        required=False,
        min_value=100,
        max_value=599,
        label="HTTP status",
        error_messages={"invalid": "Enter an HTTP status code such as 422."},
    )
    created_from = DayField(required=False, label="Created from", widget=forms.DateInput(attrs={"type": "date"}))
    created_to = DayField(required=False, label="Created to", widget=forms.DateInput(attrs={"type": "date"}))
    # The overview's failure reasons link here: leads with a failed attempt in its window that got
    # this HTTP status (0: no answer) and error summary. Hidden: set by those links, kept by the form.
    failed_status = forms.IntegerField(required=False, min_value=0, max_value=599, widget=forms.HiddenInput)
    failed_error = forms.CharField(required=False, max_length=500, strip=False, widget=forms.HiddenInput)
    failed_after = forms.DateTimeField(required=False, widget=forms.HiddenInput)
    failed_before = forms.DateTimeField(required=False, widget=forms.HiddenInput)
    # The bulk retry page's counts link here: one job's leads (its public id), by what became of them.
    bulk = forms.UUIDField(required=False, widget=forms.HiddenInput)
    bulk_result = forms.ChoiceField(
        required=False,
        choices=[("", "Any"), *((key, label) for key, (label, _) in BULK_RESULTS.items())],
        widget=forms.HiddenInput,
    )

    def __init__(self, *args: Any, partners: list[Partner], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.partners = partners
        self.bulk_job: Optional[BulkRetry] = None
        field = self.fields["partner"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "All"), *((partner.slug, partner.name) for partner in partners)]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("created_from"), cleaned.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", "The end date is before the start date.")
        failed = ("failed_status", "failed_error", "failed_after", "failed_before")
        if any(self.data.get(name) for name in failed) and not any(name in self.errors for name in failed):
            after, before = cleaned.get("failed_after"), cleaned.get("failed_before")
            # Bounded like the overview's windows, so the attempts are read from one index range.
            if not (after and before and after < before <= after + stats.LONGEST_WINDOW):
                self.add_error(
                    None, "The failed-attempt filter needs a window of at most 7 days: open it from the overview."
                )
        self._clean_bulk(cleaned)
        return cleaned

    def _clean_bulk(self, cleaned: dict[str, Any]) -> None:
        """The job named by `bulk`, among the user's partners' (a job of another is as if absent).

        The fields are hidden, so their errors are the form's: shown at its top, not under a field.
        """
        if "bulk_result" in self.errors:
            self.add_error(None, NOT_A_BULK_RESULT)
        if "bulk" in self.errors or (cleaned.get("bulk_result") and not cleaned.get("bulk")):
            self.add_error(None, NOT_A_BULK_RETRY)
        elif cleaned.get("bulk"):
            self.bulk_job = BulkRetry.objects.filter(
                public_id=cleaned["bulk"], partner_id__in=[partner.pk for partner in self.partners]
            ).first()
            if self.bulk_job is None:
                self.add_error(None, NOT_A_BULK_RETRY)

    def bulk_leads(self) -> Optional[QuerySet[Delivery, Any]]:
        """The valid form's bulk filter: a subquery of the lead ids it selects, or None."""
        if self.bulk_job is None:
            return None
        items = BulkRetryItem.objects.filter(job=self.bulk_job)
        result = self.cleaned_data.get("bulk_result")
        if result:
            items = items.filter(BULK_RESULTS[result][1])
        return Delivery.objects.filter(pk__in=items.values("delivery_id")).values("lead_id")

    def bulk_description(self) -> str:
        """The bulk filter in words, for the list to say what it shows; "" if none."""
        if self.errors or self.bulk_job is None:
            return ""
        result = self.cleaned_data.get("bulk_result")
        which = f"“{BULK_RESULTS[result][0]}”" if result else "all"
        created = self.bulk_job.created.astimezone(UTC)
        return f"Only leads of the bulk retry of {created:%Y-%m-%d %H:%M} UTC: {which}."

    def failed_attempts(self) -> Optional[dict[str, Any]]:
        """The valid form's failed-attempt filter as `stats.leads_with_failed_attempts` keywords, or None."""
        data = self.cleaned_data
        if not (data.get("failed_after") and data.get("failed_before")):
            return None
        return {
            "status": data.get("failed_status"),
            # Present but empty selects the attempts without a message; absent selects any.
            "error": data.get("failed_error", "") if "failed_error" in self.data else None,
            "start": data["failed_after"],
            "end": data["failed_before"],
        }

    def failed_description(self) -> str:
        """The failed-attempt filter in words, for the list to say what it shows; "" if none."""
        if self.errors or not hasattr(self, "cleaned_data"):
            return ""
        failed = self.failed_attempts()
        if failed is None:
            return ""
        status = failed["status"]
        answer = "any answer" if status is None else "no HTTP answer" if status == 0 else f"HTTP {status}"
        error = "" if failed["error"] is None else f" “{failed['error'] or '(no message)'}”"
        return (
            f"Only leads with a failed attempt between {failed['start'].astimezone(UTC):%Y-%m-%d %H:%M} and "
            f"{failed['end'].astimezone(UTC):%Y-%m-%d %H:%M} UTC that got {answer}{error}."
        )

    def filters(self) -> dict[str, Any]:
        """The valid form as `LeadQuerySet.filter_by` keys (the partner is the view's to apply).

        Dates are whole days in UTC, both ends included.
        """
        data = self.cleaned_data
        filters: dict[str, Any] = {
            "q": data.get("q") or "",
            "site": data.get("site"),
            "status": data.get("status") or "",
            "operation": data.get("operation") or "",
            "http_status": data.get("http_status"),
        }
        if data.get("created_from"):
            filters["created_after"] = datetime.combine(data["created_from"], time.min, tzinfo=UTC)
        if data.get("created_to"):
            filters["created_before"] = datetime.combine(data["created_to"] + timedelta(days=1), time.min, tzinfo=UTC)
        return filters
