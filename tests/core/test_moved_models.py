"""AuditEntry and WorkerHeartbeat moved from the portal app to core without moving a row: a
database migrated before the move (an existing var/ on `make run`) migrates forward cleanly,
keeps its rows, and the permissions staff held on the models follow them."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core.models import AuditEntry, WorkerHeartbeat

BEFORE_THE_MOVE = [("portal", "0001_initial"), ("core", None)]


def _migrate(targets):
    return MigrationExecutor(connection).migrate(targets).apps


def _latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_move_keeps_its_rows_and_permissions():
    old_apps = _migrate(BEFORE_THE_MOVE)
    old_entry = old_apps.get_model("portal", "AuditEntry")
    old_heartbeat = old_apps.get_model("portal", "WorkerHeartbeat")
    old_entry.objects.create(action="site.grant", object_type="site", object_id="s-1", reason="kept")
    old_heartbeat.objects.create(hostname="worker@box")
    # As the database had them before the move: the permission under the portal app.
    before = Permission.objects.get(codename="view_auditentry")
    assert (before.content_type.app_label, before.content_type.model) == ("portal", "auditentry")

    _migrate(_latest())

    assert AuditEntry.objects.get().reason == "kept"
    assert WorkerHeartbeat.objects.get().hostname == "worker@box"
    moved = Permission.objects.get(codename="view_auditentry")
    assert moved.pk == before.pk
    assert (moved.content_type.app_label, moved.content_type.model) == ("core", "auditentry")
    assert not ContentType.objects.filter(app_label="portal", model="auditentry").exists()


@pytest.mark.django_db(transaction=True)
def test_the_move_runs_backwards_too():
    _migrate(BEFORE_THE_MOVE)
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    assert {"portal_auditentry", "portal_workerheartbeat"} <= set(tables)
    _migrate(_latest())
    assert AuditEntry.objects.count() == 0
