# Written by hand (issue 12, response headers).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0008_lead_phone_search"),
    ]

    # A constant DEFAULT: PostgreSQL (11+) adds the column without rewriting the table, and
    # existing attempts read as "{}" (the page says their headers were not recorded).
    operations = [
        migrations.AddField(
            model_name="deliveryattempt",
            name="response_headers",
            field=models.JSONField(
                blank=True,
                db_default={},
                default=dict,
                help_text="RG's response headers, secrets redacted and size bounded (leads.headers); "
                "empty when no answer came, for attempts made before they were stored, and once pruned.",
            ),
        ),
    ]
