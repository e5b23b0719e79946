# Written by hand (issue 12, a lead's callbacks on its page).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("grants", "0007_partner_name_unique"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="webhookevent",
            index=models.Index(
                fields=["partner", "lead_id", "-received_at"],
                name="webhook_event_lead_recv",
                condition=models.Q(lead_id__isnull=False),
            ),
        ),
    ]
