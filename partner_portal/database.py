"""A cursor for the hot paths' few fixed statements (the push API and the callback webhook)."""

from typing import Any

from django.conf import settings
from django.db import connection


def prepared_cursor() -> Any:
    """A cursor with Django's query log and error wrapping, whose statements on PostgreSQL
    (unless ACCEPT_PREPARED_STATEMENTS is off) send their parameters apart from the text and are
    prepared once per connection: the database then neither parses nor plans them again, and the
    driver does not quote a lead's JSON into the text. Django's own cursors bind on the client,
    which cost the hot paths more than their statements did. Elsewhere, Django's cursor.
    """
    if connection.vendor != "postgresql" or not settings.ACCEPT_PREPARED_STATEMENTS:
        return connection.cursor()
    # Defined only when psycopg 3 is installed, hence unknown to the type stubs.
    from django.db.backends.postgresql.base import ServerBindingCursor  # type: ignore[attr-defined]

    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    # Only server-side binding cursors prepare, so Django's client-binding ones are unaffected.
    connection.connection.prepare_threshold = 0
    cursor = ServerBindingCursor(connection.connection)
    return connection.make_debug_cursor(cursor) if connection.queries_logged else connection.make_cursor(cursor)
