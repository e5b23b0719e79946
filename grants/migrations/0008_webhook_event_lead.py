# Written by hand (issue 12, a lead's callbacks on its page).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("grants", "0007_partner_name_unique"),
    ]

    operations: list[migrations.operations.base.Operation] = []
