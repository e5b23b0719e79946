"""The hot paths' few fixed statements (the push API and the callback webhook): a cursor that
prepares them, and their parameters as the database driver takes them.

Both look up this thread's connection once. Django's `connection` is a proxy that finds the
thread's connection again on every attribute, and a field adapting a value asks it several
times: twenty lookups a request cost a callback more CPU than its statement's parameters did.
"""

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, JSONField, Model
from psycopg.types.json import Jsonb


def current() -> BaseDatabaseWrapper:
    """This thread's default connection (the object behind django.db.connection)."""
    return connections[DEFAULT_DB_ALIAS]


@contextlib.contextmanager
def prepared_cursor(wrapper: BaseDatabaseWrapper | None = None) -> Iterator[Any]:
    """A cursor with Django's query log and error wrapping, whose statements on PostgreSQL
    (unless ACCEPT_PREPARED_STATEMENTS is off) send their parameters apart from the text and are
    prepared once per connection: the database then neither parses nor plans them again, and the
    driver does not quote a lead's JSON into the text. Django's own cursors bind on the client,
    which cost the hot paths more than their statements did. Elsewhere, Django's cursor.

    On PostgreSQL the driver's cursor is kept for the connection's life rather than opened per
    statement: a cursor that runs the same statement again keeps the adapters it looked up for
    its parameters, which a new cursor looks up afresh (a tenth of a callback's CPU).
    """
    wrapper = wrapper or current()
    if wrapper.vendor != "postgresql" or not settings.ACCEPT_PREPARED_STATEMENTS:
        with wrapper.cursor() as cursor:
            yield cursor
        return
    wrapper.ensure_connection()
    wrapper.validate_no_broken_transaction()
    kept = getattr(wrapper, "_portal_kept_cursor", None)
    if kept is None or kept.connection is not wrapper.connection or kept.closed:
        kept = wrapper._portal_kept_cursor = _server_binding_cursor(wrapper)  # type: ignore[attr-defined]
    if getattr(wrapper, "_portal_kept_busy", False):
        # Used inside another use (rows still to read): a cursor of its own, closed after.
        with _server_binding_cursor(wrapper) as own:
            yield _wrapped(wrapper, own)
        return
    wrapper._portal_kept_busy = True  # type: ignore[attr-defined]
    try:
        yield _wrapped(wrapper, kept)
    finally:
        wrapper._portal_kept_busy = False  # type: ignore[attr-defined]


def _server_binding_cursor(wrapper: BaseDatabaseWrapper) -> Any:
    # Defined only when psycopg 3 is installed, hence unknown to the type stubs.
    from django.db.backends.postgresql.base import ServerBindingCursor  # type: ignore[attr-defined]

    raw = wrapper.connection
    # Only server-side binding cursors prepare, so Django's client-binding ones are unaffected.
    raw.prepare_threshold = 0
    return ServerBindingCursor(raw)


def _wrapped(wrapper: BaseDatabaseWrapper, cursor: Any) -> Any:
    return wrapper.make_debug_cursor(cursor) if wrapper.queries_logged else wrapper.make_cursor(cursor)


@functools.cache
def model_field(model: type[Model], name: str) -> "Field[Any, Any]":
    """`model`'s concrete field `name` (looked up once per process)."""
    field = model._meta.get_field(name)
    assert isinstance(field, Field)
    return field


@functools.cache
def _is_json(model: type[Model], name: str) -> bool:
    return isinstance(model_field(model, name), JSONField)


def param(wrapper: BaseDatabaseWrapper, model: type[Model], name: str, value: Any) -> Any:
    """`value` as `model`'s field `name` would send it to `wrapper`'s database (UUID, JSON,
    datetime, bytes)."""
    if wrapper.vendor == "postgresql":
        # What Django's fields hand psycopg on PostgreSQL, without their generic layers, which
        # cost a push more than its statement did: psycopg adapts UUIDs, datetimes, bytes, text
        # and numbers itself, and JSON goes wrapped.
        return Jsonb(value) if value is not None and _is_json(model, name) else value
    return model_field(model, name).get_db_prep_save(value, wrapper)
