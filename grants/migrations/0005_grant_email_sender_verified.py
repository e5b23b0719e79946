# Written by hand (issue 11, item 3): whether a grant email's sender was verified.
#
# Rows stored before have not been checked; they read "not checked" and keep their status. A
# message still waiting for review is checked when it is read again.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("grants", "0004_webhook_event_signed_meaning"),
    ]

    operations = [
        migrations.AddField(
            model_name="grantemail",
            name="sender_verification",
            field=models.CharField(
                choices=[
                    ("not_checked", "Sender not checked"),
                    ("verified", "Sender verified"),
                    ("not_verified", "Sender not verified"),
                ],
                default="not_checked",
                help_text=(
                    "Verified: a trusted receiving server's Authentication-Results showed DKIM or SPF passing for a "
                    "GRANT_EMAIL_SENDER_DOMAINS domain aligned with From. The webhook and the mailbox grant only then."
                ),
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="grantemail",
            name="sender_verification_detail",
            field=models.CharField(
                blank=True,
                help_text="What passed and which server checked it, or why it is not verified.",
                max_length=500,
            ),
        ),
    ]
