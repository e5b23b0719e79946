"""grants 0007: partners named alike before names became unique are renamed, not refused."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("grants", "0006_bodies_pruned")]
AFTER = [("grants", "0007_partner_name_unique")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_renames_duplicate_partner_names_keeping_the_oldest():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    partners = executor.loader.project_state(BEFORE).apps.get_model("grants", "Partner").objects
    rows = [
        partners.create(name=name, slug=f"p{n}", rg_username=f"u{n}", rg_password="pw")
        for n, name in enumerate(["Acme", "ACME", "Acme (2)", "acme", "Other"])
    ]

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    renamed = executor.loader.project_state(AFTER).apps.get_model("grants", "Partner").objects
    names = [renamed.get(pk=row.pk).name for row in rows]

    assert names == ["Acme", "ACME (3)", "Acme (2)", "acme (4)", "Other"]
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
