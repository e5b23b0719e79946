"""`{% retention_note %}`: which retention is in force, in a sentence for staff."""

from django import template

from operations.retention import RULES

register = template.Library()


@register.inclusion_tag("operations/_retention_note.html")
def retention_note() -> dict[str, object]:
    return {"rules": [{"what": rule.what, "days": rule.days} for rule in RULES]}
