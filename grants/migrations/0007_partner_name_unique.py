# Written by hand (issue 12, unguarded actions): partner names are unique, ignoring case.
#
# Existing duplicates are renamed first: the oldest partner keeps the name, the others get
# " (2)", " (3)"... so the constraint can be added. Staff can rename them afterwards.

from django.db import migrations, models
from django.db.models.functions import Lower

NAME_MAX_LENGTH = 200


def _renamed(name: str, n: int, taken: set[str]) -> tuple[str, int]:
    while True:
        suffix = f" ({n})"
        candidate = name[: NAME_MAX_LENGTH - len(suffix)] + suffix
        if candidate.lower() not in taken:
            return candidate, n
        n += 1


def rename_duplicates(apps, schema_editor):
    Partner = apps.get_model("grants", "Partner")
    partners = list(Partner.objects.order_by("created", "pk").only("pk", "name"))
    taken = {partner.name.lower() for partner in partners}
    seen: set[str] = set()
    for partner in partners:
        key = partner.name.lower()
        if key not in seen:
            seen.add(key)
            continue
        partner.name, _ = _renamed(partner.name, 2, taken)
        taken.add(partner.name.lower())
        seen.add(partner.name.lower())
        partner.save(update_fields=["name"])


class Migration(migrations.Migration):
    dependencies = [
        ("grants", "0006_bodies_pruned"),
    ]

    operations = [
        migrations.RunPython(rename_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="partner",
            constraint=models.UniqueConstraint(
                Lower("name"),
                name="grants_partner_name_unique_ci",
                violation_error_message="Another partner already has this name (names are compared ignoring case).",
            ),
        ),
    ]
