"""AuditEntry and WorkerHeartbeat now belong to the core app (core/migrations/0001_initial.py):
portal forgets them (state only; the tables stay), and their content types move with them, so
the permissions staff were given on them keep applying."""

from django.db import migrations

MOVED = ("auditentry", "workerheartbeat")


def content_types_to_core(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        # A core content type exists already only if core's were created first (a database
        # migrated app by app); then portal's stale one is left as Django leaves stale ones.
        if not content_type.objects.filter(app_label="core", model=model).exists():
            content_type.objects.filter(app_label="portal", model=model).update(app_label="core")


def content_types_to_portal(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not content_type.objects.filter(app_label="portal", model=model).exists():
            content_type.objects.filter(app_label="core", model=model).update(app_label="portal")


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0001_initial"),
        ("core", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEntry"), migrations.DeleteModel(name="WorkerHeartbeat")],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_core, content_types_to_portal),
    ]
