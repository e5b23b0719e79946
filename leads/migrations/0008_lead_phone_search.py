# Written by hand (issue 12, phone search).
#
# A GIN trigram index on the phone's digits, PostgreSQL only: the dashboard's phone search
# (leads.search.PhoneDigits) asks `regexp_replace(phone, ...) LIKE '%digits%'`, and only an index
# on that exact expression answers it without reading every lead. SQLite gets nothing (pg_trgm
# does not exist there) and scans. One index, not one each on email and name too: every push pays
# for it on insert, and the phone is the search that needs it.
#
# CONCURRENTLY, so building it on a table of millions does not block pushes meanwhile; that needs
# a migration outside a transaction.

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

CREATE = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS lead_phone_digits_trgm ON leads_lead "
    "USING gin ((regexp_replace(phone, '[^0-9]+', '', 'g')) gin_trgm_ops)"
)
DROP = "DROP INDEX CONCURRENTLY IF EXISTS lead_phone_digits_trgm"


def index_create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def index_drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("leads", "0007_hourly_rollup"),
    ]

    operations: list[migrations.operations.base.Operation] = [
        TrigramExtension(),
        migrations.RunPython(index_create, index_drop, elidable=False),
    ]
