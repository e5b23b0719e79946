"""One UPDATE that gives many rows each their own values, on PostgreSQL and SQLite alike.

    UPDATE t SET a = v.column2, b = v.column3 FROM (VALUES (1, 'x', ...), ...) AS v
    WHERE t.id = v.column1

Django's `bulk_update` builds a CASE WHEN per field and row out of expression objects, which
cost the delivery engine most of its CPU per recorded batch; this builds one statement of plain
parameters. On PostgreSQL the rows travel as one array per column (`unnest`), so the statement's
text is the same for any number of rows and psycopg parses it once, not once per batch size;
SQLite gets a VALUES list, whose columns it names column1, column2, ...
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
    every = (key, *columns)
    if connection.vendor == "postgresql":
        names = ", ".join(f"column{n}" for n in range(1, len(every) + 1))
        arrays = ", ".join(f"%s::{column.postgres_type}[]" for column in every)
        source = f"unnest({arrays}) AS v({names})"
        values: list[Any] = [list(column) for column in zip(*rows, strict=True)]
    else:
        one = "(" + ", ".join("%s" for _ in every) + ")"
        source = f"(VALUES {', '.join([one] * len(rows))}) AS v"
        values = [value for row in rows for value in row]
    assignments = [f"{column.name} = v.column{n}" for n, column in enumerate(columns, start=2)]
    if also_set:
        assignments.append(also_set)
    # Names come from this module's callers' constants, never from input (hence the noqa).
    sql = (
        f"UPDATE {table} SET {', '.join(assignments)} "  # noqa: S608
        f"FROM {source} "
        f"WHERE {table}.{key.name} = v.column1{' AND ' + also_where if also_where else ''} "
        f"RETURNING {table}.{key.name}"
    )
    set_params = list(params[: also_set.count("%s")])
    where_params = list(params[also_set.count("%s") :])
    with connection.cursor() as cursor:
        cursor.execute(sql, [*set_params, *values, *where_params])
        return [row[0] for row in cursor.fetchall()]


def rows_insert(table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> list[Any]:
    """One INSERT of many rows (values adapted for the database, in `columns` order); their ids,
    in order (Django's own bulk_create relies on the same order from both databases)."""
    if not rows:
        return []
    names = ", ".join(column.name for column in columns)
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{column.postgres_type}[]" for column in columns)
        source = f"SELECT * FROM unnest({arrays})"  # noqa: S608 (column names and types from code)
        values: list[Any] = [list(column) for column in zip(*rows, strict=True)]
    else:
        one = "(" + ", ".join("%s" for _ in columns) + ")"
        source = f"VALUES {', '.join([one] * len(rows))}"
        values = [value for row in rows for value in row]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({names}) {source} RETURNING id", values)
        return [row[0] for row in cursor.fetchall()]


def in_list(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """`column IN (...)` as SQL and parameters: one array parameter on PostgreSQL (a statement
    psycopg parses once), a placeholder per value on SQLite."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)
