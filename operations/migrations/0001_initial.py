# Written by hand (issue 13, retention): each retention rule's progress.

from django.db import migrations, models
import django.utils.timezone


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="PruneMark",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("rule", models.CharField(max_length=40, unique=True)),
                ("reached", models.DateTimeField()),
                ("updated", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
    ]
