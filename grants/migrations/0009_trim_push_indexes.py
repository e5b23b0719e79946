# Written by hand: one index fewer for a callback to write (issue 10, lean accept path).
#
# grants_webhookevent's own index on partner repeats the first column of webhook_event_unique_body
# and webhook_event_partner_recv. Dropped alone and CONCURRENTLY on PostgreSQL
# (partner_portal/online_indexes.py): Django's AlterField would re-check every row's foreign key.

import django.db.models.deletion
from django.db import migrations, models

from partner_portal.online_indexes import Index, index_swap


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("grants", "0008_webhook_event_lead"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="webhookevent",
                    name="partner",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="webhook_events",
                        to="grants.partner",
                    ),
                ),
            ],
            database_operations=[
                index_swap(
                    drop=(Index("grants_webhookevent_partner_id_2f5a6251", "grants_webhookevent", "partner_id"),)
                ),
            ],
        ),
    ]
