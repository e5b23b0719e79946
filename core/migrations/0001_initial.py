"""AuditEntry and WorkerHeartbeat move here from the portal app: state only. Their tables were
created by portal's 0001 and keep their names (db_table), so no row moves and nothing is locked."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("grants", "0001_initial"),
        ("portal", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WorkerHeartbeat",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("hostname", models.CharField(max_length=200, unique=True)),
                        ("last_seen", models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={"db_table": "portal_workerheartbeat"},
                ),
                migrations.CreateModel(
                    name="AuditEntry",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("action", models.CharField(help_text="e.g. lead.resend, site.grant, api_key.revoke", max_length=64)),
                        ("object_type", models.CharField(max_length=64)),
                        ("object_id", models.CharField(max_length=64)),
                        ("before", models.JSONField(blank=True, null=True)),
                        ("after", models.JSONField(blank=True, null=True)),
                        ("reason", models.TextField(blank=True)),
                        ("created", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "partner",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="audit_entries",
                                to="grants.partner",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "portal_auditentry",
                        "ordering": ["-created", "-id"],
                        "indexes": [models.Index(fields=["partner", "-created"], name="audit_partner_created")],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
