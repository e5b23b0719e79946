# Written by hand (issue 12, hourly rollup): finished attempts counted per hour, partner, outcome
# and failure reason (leads.rollup), so the overview reads a few hundred rows instead of every
# attempt of its window.
#
# The backfill fills it from the attempts already there with leads.rollup.hours_rebuild: one
# INSERT ... SELECT ... GROUP BY, the same SQL `manage.py rollup_rebuild` runs, on SQLite and
# PostgreSQL. It uses the current code, which matches this table as created here; should the
# rollup's columns ever change, freeze a copy of that SQL in this file.

import django.db.models.deletion
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def backfill(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    from leads import rollup

    rollup.hours_rebuild(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [
        ("grants", "0001_initial"),
        ("leads", "0006_attempt_bodies_pruned"),
    ]

    operations = [
        migrations.CreateModel(
            name="AttemptHour",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("hour", models.DateTimeField(help_text="The first instant of the UTC hour the attempts started in.")),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("started", "In progress"),
                            ("delivered", "Delivered"),
                            ("retry", "Failed, will retry"),
                            ("failed", "Failed permanently"),
                            ("dead", "Failed, out of attempts"),
                            ("interrupted", "Interrupted (worker stopped)"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "response_status",
                    models.PositiveSmallIntegerField(
                        default=0,
                        help_text="RG's HTTP status; 0 when no answer came (not NULL, so the key below matches it).",
                    ),
                ),
                (
                    "error",
                    models.CharField(
                        blank=True, help_text="The attempts' error summary, as stored on them.", max_length=500
                    ),
                ),
                ("attempts", models.IntegerField(default=0)),
                ("last_started", models.DateTimeField(help_text="When the latest of these attempts started.")),
                (
                    "timed",
                    models.IntegerField(default=0, help_text="Attempts with a duration (the histogram's +Inf bucket)."),
                ),
                ("duration_ms_sum", models.BigIntegerField(default=0)),
                ("duration_ms_max", models.IntegerField(default=0)),
                ("le_25", models.IntegerField(default=0, help_text="Timed attempts that took 25 ms or less.")),
                ("le_50", models.IntegerField(default=0, help_text="Timed attempts that took 50 ms or less.")),
                ("le_75", models.IntegerField(default=0, help_text="Timed attempts that took 75 ms or less.")),
                ("le_100", models.IntegerField(default=0, help_text="Timed attempts that took 100 ms or less.")),
                ("le_150", models.IntegerField(default=0, help_text="Timed attempts that took 150 ms or less.")),
                ("le_200", models.IntegerField(default=0, help_text="Timed attempts that took 200 ms or less.")),
                ("le_250", models.IntegerField(default=0, help_text="Timed attempts that took 250 ms or less.")),
                ("le_300", models.IntegerField(default=0, help_text="Timed attempts that took 300 ms or less.")),
                ("le_400", models.IntegerField(default=0, help_text="Timed attempts that took 400 ms or less.")),
                ("le_500", models.IntegerField(default=0, help_text="Timed attempts that took 500 ms or less.")),
                ("le_750", models.IntegerField(default=0, help_text="Timed attempts that took 750 ms or less.")),
                ("le_1000", models.IntegerField(default=0, help_text="Timed attempts that took 1000 ms or less.")),
                ("le_1500", models.IntegerField(default=0, help_text="Timed attempts that took 1500 ms or less.")),
                ("le_2000", models.IntegerField(default=0, help_text="Timed attempts that took 2000 ms or less.")),
                ("le_3000", models.IntegerField(default=0, help_text="Timed attempts that took 3000 ms or less.")),
                ("le_5000", models.IntegerField(default=0, help_text="Timed attempts that took 5000 ms or less.")),
                ("le_10000", models.IntegerField(default=0, help_text="Timed attempts that took 10000 ms or less.")),
                ("le_20000", models.IntegerField(default=0, help_text="Timed attempts that took 20000 ms or less.")),
                (
                    "partner",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="grants.partner",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("hour", "partner", "outcome", "response_status", "error"), name="attempt_hour_key"
                    )
                ],
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
