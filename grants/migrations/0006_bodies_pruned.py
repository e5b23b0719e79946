# Written by hand (issue 13, retention): when a callback's body and a grant email's raw message
# were pruned.
#
# Nullable columns with no default: PostgreSQL adds them without rewriting the tables.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("grants", "0005_grant_email_sender_verified"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookevent",
            name="body_pruned_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When RETENTION_CALLBACK_BODY_DAYS pruned the body (it now says so); the digest, action, "
                "site, lead id and state are kept.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="grantemail",
            name="raw_pruned_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When RETENTION_GRANT_EMAIL_DAYS pruned the raw message (it now says so); what the parser "
                "read, the sender and the status are kept.",
                null=True,
            ),
        ),
    ]
