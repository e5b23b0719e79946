# Written by hand (issue 12, phone search).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0007_hourly_rollup"),
    ]

    operations: list[migrations.operations.base.Operation] = []
