# Written by hand: fewer indexes for a push to write (issue 10, lean accept path).
#
# leads_lead's own indexes on partner and site, and leads_delivery's on lead, repeat the first
# column of a composite index that serves the same lookups (lead_unique_per_partner,
# lead_site_created, delivery_unique_sequence); a delivery's actor and retry_requested_by are
# indexed only where set, since a push sets neither. Five fewer index entries per push.
#
# The database side runs alone and CONCURRENTLY on PostgreSQL (partner_portal/online_indexes.py):
# Django's AlterField would re-check every row's foreign key under a lock.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from partner_portal.online_indexes import Index, index_swap


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("grants", "0009_trim_push_indexes"),
        ("leads", "0009_attempt_response_headers"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="delivery",
                    name="actor",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="delivery",
                    name="lead",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="deliveries",
                        to="leads.lead",
                    ),
                ),
                migrations.AlterField(
                    model_name="delivery",
                    name="retry_requested_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        help_text="Who asked for the pending manual retry; its attempt names them.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="lead",
                    name="partner",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="leads",
                        to="grants.partner",
                    ),
                ),
                migrations.AlterField(
                    model_name="lead",
                    name="site",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="leads",
                        to="grants.site",
                    ),
                ),
                migrations.AddIndex(
                    model_name="delivery",
                    index=models.Index(
                        condition=models.Q(("actor__isnull", False)), fields=["actor"], name="delivery_actor"
                    ),
                ),
                migrations.AddIndex(
                    model_name="delivery",
                    index=models.Index(
                        condition=models.Q(("retry_requested_by__isnull", False)),
                        fields=["retry_requested_by"],
                        name="delivery_retry_requested_by",
                    ),
                ),
            ],
            database_operations=[
                index_swap(
                    drop=(
                        Index("leads_lead_partner_id_0fa90f5e", "leads_lead", "partner_id"),
                        Index("leads_lead_site_id_7fe9e579", "leads_lead", "site_id"),
                        Index("leads_delivery_lead_id_827558d8", "leads_delivery", "lead_id"),
                        Index("leads_delivery_actor_id_90bb0f6b", "leads_delivery", "actor_id"),
                        Index(
                            "leads_delivery_retry_requested_by_id_d3eab7b8", "leads_delivery", "retry_requested_by_id"
                        ),
                    ),
                    create=(
                        Index("delivery_actor", "leads_delivery", "actor_id", "actor_id IS NOT NULL"),
                        Index(
                            "delivery_retry_requested_by",
                            "leads_delivery",
                            "retry_requested_by_id",
                            "retry_requested_by_id IS NOT NULL",
                        ),
                    ),
                ),
            ],
        ),
    ]
