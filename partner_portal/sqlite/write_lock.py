"""One writer at a time, in the order they came, across the threads and processes sharing a
SQLite database.

SQLite itself lets one writer in and makes the others wait in its busy handler, which sleeps in
growing steps of up to 100 ms before it looks again. Under steady writes (web threads accepting
pushes, a worker recording deliveries, the sandbox logging requests) a writer that has slept
100 ms keeps missing the short gaps between the others' transactions: the embedded benchmark saw
a push wait 2.2 s at p99, past the 2 s timeout of RG's client. Here a writer first takes this
lock, so SQLite's is free whenever a writer reaches it:

- between the threads of a process, a queue: the lock is handed to the waiters in the order
  they came, each woken as it is handed over (a plain `threading.Lock` lets the thread that
  just released it take it straight back, and a waiter can starve);
- between processes (web, worker, beat), `flock` on a file beside the database. flock has no
  timeout, so a waiter polls it every `POLL_SECONDS`: one millisecond, not SQLite's hundred.
"""

import collections
import fcntl
import os
import threading
import time
from typing import Optional

POLL_SECONDS = 0.001


class WriteLockTimeout(Exception):
    """The lock was not free within the timeout (SQLite would have said "database is locked")."""


class QueueLock:
    """A lock handed to its waiters first come, first served."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held = False
        self._waiters: collections.deque[threading.Lock] = collections.deque()

    def acquire(self, timeout: float) -> bool:
        with self._guard:
            if not self._held and not self._waiters:
                self._held = True
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        if waiter.acquire(timeout=max(timeout, 0)):
            return True  # handed over by release(): the lock stays held, now for this thread
        with self._guard:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                return False
        return True  # handed over just as the wait ran out

    def release(self) -> None:
        with self._guard:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._held = False


class WriteLock:
    """The lock for one database file in this process. Not re-entrant: a connection takes it
    once per transaction (see partner_portal.sqlite.base)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._threads = QueueLock()
        self._fd: Optional[int] = None
        self._pid = 0

    def _file(self) -> int:
        # Opened in each process: a descriptor inherited across fork() shares one flock with the
        # parent, and would exclude nothing.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if not self._threads.acquire(timeout):
            raise WriteLockTimeout(f"another thread held the write lock on {self.path} for {timeout:g} s")
        try:
            fd = self._file()
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise WriteLockTimeout(
                            f"another process held the write lock on {self.path} for {timeout:g} s"
                        ) from None
                    time.sleep(POLL_SECONDS)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


_locks: dict[str, WriteLock] = {}
_locks_guard = threading.Lock()


def write_lock_for(database_path: str) -> WriteLock:
    """The process's lock for a database file (its lock file is `<database>.writelock`)."""
    path = os.path.abspath(database_path) + ".writelock"
    with _locks_guard:
        lock = _locks.get(path)
        if lock is None:
            lock = _locks[path] = WriteLock(path)
        return lock
