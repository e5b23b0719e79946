"""Pieces of the dashboard's list filters. A filter answers any query string with a page: a value
it cannot use is a form error shown next to the field, never a server error."""

from datetime import date, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from grants.models import Partner


class DayField(forms.DateField):
    """A day of a date-range filter, which becomes whole-day bounds (from its midnight to the
    next). The first and last days of the calendar are refused: the bound after the last day,
    or one moved back to UTC before the first, is no date Python can hold."""

    first = date.min + timedelta(days=1)
    last = date.max - timedelta(days=1)

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value and not self.first <= value <= self.last:
            raise ValidationError(
                "Enter a date between %(first)s and %(last)s.",
                code="out_of_range",
                params={"first": self.first.isoformat(), "last": self.last.isoformat()},
            )


class AuditFilterForm(forms.Form):
    """GET filters of the audit trail; a partner the user cannot see is an error, not every row."""

    partner = forms.ChoiceField(required=False)
    action = forms.CharField(required=False, max_length=64)

    def __init__(self, *args: Any, partners: QuerySet[Partner], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["partner"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "All"), *((partner.slug, partner.name) for partner in partners)]
