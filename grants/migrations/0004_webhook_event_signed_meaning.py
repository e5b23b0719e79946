# Written by hand (issue 11, item 1): a signed body means one thing, once.
#
# The replay key becomes (partner, body_sha256): the unsigned X-Lead-Router-Action no longer makes
# the same signed body a second request. Rows stored before could hold one body under two
# actions (a replay under another header, as in the issue); the data step keeps the first of
# each as the body's event and renames the others' digest, which no SHA-256 hex digest can
# equal, so the new key holds. They stay, as evidence, with a warning for staff, and any not
# yet finished is set aside as ignored. The same step moves event times stamped after their
# arrival (the unsigned header again) back to the arrival, so an old replay stamped in 2099
# stops shadowing the callbacks still to come.
#
# It runs with the old key dropped and before the new one is added, on PostgreSQL and SQLite
# alike, as plain UPDATEs through the ORM. On PostgreSQL the foreign keys are checked at once
# while it runs: a row updated twice in one transaction queues a deferred check, and a pending
# one makes the ALTER TABLE that follows fail. Not reversible in data: going back restores the
# old key, which the renamed rows satisfy too.

from datetime import timedelta

from django.db import migrations, models
from django.db.models import Count, F

# grants.destination.MAX_CLOCK_SKEW when this was written (a migration keeps its own copy).
MAX_CLOCK_SKEW = timedelta(seconds=5)


def _ns(at):
    return int(at.replace(microsecond=0).timestamp()) * 1_000_000_000 + at.microsecond * 1000


def keep_one_event_per_signed_body(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    WebhookEvent = apps.get_model("grants", "WebhookEvent")
    events = WebhookEvent.objects.using(schema_editor.connection.alias)
    repeated = (
        events.order_by()
        .values("partner_id", "body_sha256")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("partner_id", "body_sha256")
    )
    for partner_id, digest in list(repeated):
        same_body = events.filter(partner_id=partner_id, body_sha256=digest).order_by("received_at", "id")
        first, *later = same_body.only("id", "public_id", "action", "state", "warning")
        for event in later:
            note = (
                f"Repeats the signed body of callback {first.public_id} ({first.action or 'no action'}), "
                f"stored under X-Lead-Router-Action {event.action!r} before one signed body counted once."
            )
            unfinished = event.state in ("received", "processing", "failed")
            events.filter(pk=event.pk).update(
                body_sha256=f"{digest[:32]}+{event.pk}",
                warning=f"{event.warning} {note}".strip(),
                **({"state": "ignored", "error": note} if unfinished else {}),
            )

    future = events.filter(timestamp__gt=F("received_at") + MAX_CLOCK_SKEW).only("id", "received_at", "warning")
    for event in future:
        note = "X-Lead-Router-Timestamp was later than the request arrived; ordered as of its arrival."
        events.filter(pk=event.pk).update(
            timestamp=event.received_at,
            timestamp_ns=_ns(event.received_at),
            warning=f"{event.warning} {note}".strip(),
        )


class Migration(migrations.Migration):
    dependencies = [
        ("grants", "0003_site_circuit"),
    ]

    operations = [
        migrations.AlterField(
            model_name="webhookevent",
            name="action",
            field=models.CharField(
                blank=True,
                help_text="The signed body's action; X-Lead-Router-Action only where it has none.",
                max_length=64,
            ),
        ),
        migrations.AlterField(
            model_name="webhookevent",
            name="body_sha256",
            field=models.CharField(
                help_text="Replays are recognised by partner and this alone: one signed body, one event.",
                max_length=64,
            ),
        ),
        migrations.AlterField(
            model_name="webhookevent",
            name="timestamp",
            field=models.DateTimeField(
                blank=True,
                help_text=(
                    "When it happened, to the microsecond: the body's signed time, else the header's within bounds."
                ),
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="webhookevent",
            name="timestamp_ns",
            field=models.BigIntegerField(
                blank=True, help_text="The same time in nanoseconds since the epoch: orders events.", null=True
            ),
        ),
        migrations.AddField(
            model_name="webhookevent",
            name="warning",
            field=models.TextField(
                blank=True, help_text="What the unsigned headers said that was not followed (an action, a time)."
            ),
        ),
        migrations.RemoveConstraint(
            model_name="webhookevent",
            name="webhook_event_unique_body",
        ),
        migrations.RunPython(keep_one_event_per_signed_body, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="webhookevent",
            constraint=models.UniqueConstraint(fields=("partner", "body_sha256"), name="webhook_event_unique_body"),
        ),
    ]
