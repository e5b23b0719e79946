"""Index changes that a migration can make while the portal keeps taking pushes.

Django's own operations for an index change block writers on PostgreSQL: an AlterField that
drops a foreign key's index also drops and re-adds the constraint, which checks every row under
a lock, and AddIndex builds without CONCURRENTLY. These run the statements alone, CONCURRENTLY on
PostgreSQL (the migration sets `atomic = False`); SQLite drops and builds indexes in place too.
Pair them with the matching state operations in `SeparateDatabaseAndState`.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


@dataclass(frozen=True)
class Index:
    name: str
    table: str
    columns: str  # the column list, as SQL
    where: str = ""  # a partial index's condition, as SQL

    def create_sql(self, concurrently: str) -> str:
        where = f" WHERE {self.where}" if self.where else ""
        return f"CREATE INDEX {concurrently}IF NOT EXISTS {self.name} ON {self.table} ({self.columns}){where}"

    def drop_sql(self, concurrently: str) -> str:
        return f"DROP INDEX {concurrently}IF EXISTS {self.name}"


def _runner(
    drop: tuple[Index, ...], create: tuple[Index, ...]
) -> Callable[[StateApps, BaseDatabaseSchemaEditor], None]:
    def run(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
        # Build first, so a query never finds neither index.
        for index in create:
            schema_editor.execute(index.create_sql(concurrently))
        for index in drop:
            schema_editor.execute(index.drop_sql(concurrently))

    return run


def index_swap(*, drop: tuple[Index, ...] = (), create: tuple[Index, ...] = ()) -> migrations.RunPython:
    """Create `create` and drop `drop`; reversed, the other way round."""
    return migrations.RunPython(_runner(drop, create), _runner(create, drop), elidable=False)
