"""One UPDATE that gives many rows each their own values, on PostgreSQL and SQLite alike.

    UPDATE t SET a = v.column2, b = v.column3 FROM (VALUES (1, 'x', ...), ...) AS v
    WHERE t.id = v.column1

Django's `bulk_update` builds a CASE WHEN per field and row out of expression objects, which
cost the delivery engine most of its CPU per recorded batch; this builds one statement of plain
parameters. Both databases name a VALUES list's columns column1, column2, ...; PostgreSQL needs
each value's type spelled out, SQLite takes what it is given.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection


@dataclass(frozen=True)
class Column:
    name: str
    postgres_type: str  # the cast PostgreSQL needs for a parameter in a VALUES list


def rows_update(
    table: str,
    key: Column,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    *,
    also_set: str = "",
    also_where: str = "",
    params: Sequence[Any] = (),
) -> list[Any]:
    """Give each row (key value first, then one value per column, already adapted for the
    database) its values; `also_set` and `also_where` add SQL using `params`, in that order.
    Returns the keys of the rows updated."""
    if not rows:
        return []
    if connection.vendor == "postgresql":
        one = "(" + ", ".join(f"%s::{column.postgres_type}" for column in (key, *columns)) + ")"
    else:
        one = "(" + ", ".join("%s" for _ in (key, *columns)) + ")"
    assignments = [f"{column.name} = v.column{n}" for n, column in enumerate(columns, start=2)]
    if also_set:
        assignments.append(also_set)
    # Names come from this module's callers' constants, never from input (hence the noqa).
    sql = (
        f"UPDATE {table} SET {', '.join(assignments)} "  # noqa: S608
        f"FROM (VALUES {', '.join([one] * len(rows))}) AS v "
        f"WHERE {table}.{key.name} = v.column1{' AND ' + also_where if also_where else ''} "
        f"RETURNING {table}.{key.name}"
    )
    flat = [value for row in rows for value in row]
    set_params = list(params[: also_set.count("%s")])
    where_params = list(params[also_set.count("%s") :])
    with connection.cursor() as cursor:
        cursor.execute(sql, [*set_params, *flat, *where_params])
        return [row[0] for row in cursor.fetchall()]
