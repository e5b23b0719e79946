# Written by hand (issue 13, retention): when an attempt's bodies were pruned.
#
# A nullable column with no default: PostgreSQL adds it without rewriting the table.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0005_lean_accept"),
    ]

    operations = [
        migrations.AddField(
            model_name="deliveryattempt",
            name="bodies_pruned_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When RETENTION_ATTEMPT_BODY_DAYS pruned the request and response bodies (each now says "
                "so); the status, error, timing and outcome are kept.",
                null=True,
            ),
        ),
    ]
