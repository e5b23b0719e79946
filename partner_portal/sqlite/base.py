"""Django's SQLite backend, with writers queued on partner_portal.sqlite.write_lock.

A transaction (`atomic`, which begins IMMEDIATE: the settings ask for it) takes the lock before
BEGIN and gives it back after COMMIT or ROLLBACK. A write outside a transaction (autocommit: a
lone INSERT, UPDATE or DELETE) takes it around the statement. Reads take nothing: in WAL mode
they never wait for a writer. An in-memory database (the tests') is one process's alone and
uses no lock.
"""

from typing import Any, Optional

from django.db import OperationalError
from django.db.backends.sqlite3 import base

from partner_portal.sqlite.write_lock import WriteLock, WriteLockTimeout, write_lock_for

# Statements that take SQLite's write lock when run on their own.
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "WITH")
# Django's own default for SQLite's busy timeout, when OPTIONS name none.
DEFAULT_TIMEOUT = 5.0


def _writes(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(_WRITES)


class DatabaseWrapper(base.DatabaseWrapper):
    write_lock: Optional[WriteLock] = None
    _holding = False

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        if not self.is_in_memory_db():
            self.write_lock = write_lock_for(str(self.settings_dict["NAME"]))
        self._lock_timeout = float(conn_params.get("timeout", DEFAULT_TIMEOUT))
        return connection

    def create_cursor(self, name: Optional[str] = None) -> Any:
        cursor = self.connection.cursor(factory=QueuedWriteCursor)
        cursor.database = self
        return cursor

    def write_lock_acquire(self) -> bool:
        """Take the lock unless there is none or this connection holds it; True if taken here."""
        if self.write_lock is None or self._holding:
            return False
        try:
            self.write_lock.acquire(self._lock_timeout)
        except WriteLockTimeout as exc:
            raise OperationalError(f"database is locked ({exc})") from None
        self._holding = True
        return True

    def write_lock_release(self) -> None:
        if self._holding and self.write_lock is not None:
            self._holding = False
            self.write_lock.release()

    def _start_transaction_under_autocommit(self) -> None:
        taken = self.write_lock_acquire()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # not in the stubs
        except BaseException:
            if taken:
                self.write_lock_release()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]  # not in the stubs
        finally:
            self.write_lock_release()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]  # not in the stubs
        finally:
            self.write_lock_release()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]  # not in the stubs
        finally:
            self.write_lock_release()


class QueuedWriteCursor(base.SQLiteCursorWrapper):
    """Takes the write lock around a write in autocommit mode; inside a transaction the
    connection already holds it."""

    database: DatabaseWrapper

    def execute(self, query: str, params: Any = None) -> Any:
        if not _writes(query) or not self.database.get_autocommit():
            return super().execute(query, params)
        taken = self.database.write_lock_acquire()
        try:
            return super().execute(query, params)
        finally:
            if taken:
                self.database.write_lock_release()

    def executemany(self, query: str, param_list: Any) -> Any:
        if not _writes(query) or not self.database.get_autocommit():
            return super().executemany(query, param_list)
        taken = self.database.write_lock_acquire()
        try:
            return super().executemany(query, param_list)
        finally:
            if taken:
                self.database.write_lock_release()
