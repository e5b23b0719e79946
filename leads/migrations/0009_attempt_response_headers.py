# Written by hand (issue 12, response headers).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0008_lead_phone_search"),
    ]

    operations: list[migrations.operations.base.Operation] = []
