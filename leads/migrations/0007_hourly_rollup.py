# Written by hand (issue 12, hourly rollup).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0006_attempt_bodies_pruned"),
    ]

    operations: list[migrations.operations.base.Operation] = []
