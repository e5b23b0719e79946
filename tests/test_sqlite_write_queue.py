"""The embedded default's SQLite backend queues writers on its own lock (partner_portal.sqlite):
a writer gets in as soon as the one before it finishes, across threads and processes, instead of
waking from SQLite's busy handler up to 100 ms late, again and again."""

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connections, transaction

from partner_portal.sqlite.base import DatabaseWrapper
from partner_portal.sqlite.write_lock import WriteLockTimeout, write_lock_for

REPO = Path(__file__).resolve().parents[1]
# Well under SQLite's own waits once it has slept a few times (its steps grow to 100 ms).
PROMPT = 0.05


def _wrapper(path: Path, *, timeout: float = 5.0) -> DatabaseWrapper:
    settings_dict = {
        **connections.settings["default"],
        "ENGINE": "partner_portal.sqlite",
        "NAME": str(path),
        "OPTIONS": {"timeout": timeout, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        "CONN_MAX_AGE": 0,
    }
    return DatabaseWrapper(settings_dict, alias="queued")


@pytest.fixture(autouse=True)
def _own_databases(django_db_blocker: Any) -> Any:
    """These tests open their own database files, not the test database."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "queued.sqlite3"
    wrapper = _wrapper(path)
    with wrapper.cursor() as cursor:
        cursor.execute("CREATE TABLE t (n integer)")
    wrapper.close()
    return path


def _in_thread(path: Path, work: Any, *, timeout: float = 5.0) -> threading.Thread:
    """Run `work(alias)` in a thread with its own connection under the alias "queued"."""

    def run() -> None:
        connections["queued"] = _wrapper(path, timeout=timeout)
        try:
            work("queued")
        finally:
            connections["queued"].close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _hold(path: Path, seconds: float, committed: dict[str, float]) -> threading.Thread:
    taken = threading.Event()

    def work(alias: str) -> None:
        with transaction.atomic(using=alias):
            connections[alias].cursor().execute("INSERT INTO t VALUES (1)")
            taken.set()
            time.sleep(seconds)
        committed["at"] = time.monotonic()

    thread = _in_thread(path, work)
    assert taken.wait(5)
    return thread


def test_a_lone_write_goes_in_as_soon_as_the_transaction_before_it_commits(database):
    committed: dict[str, float] = {}
    holder = _hold(database, 0.4, committed)
    done: dict[str, float] = {}

    def write(alias: str) -> None:
        connections[alias].cursor().execute("INSERT INTO t VALUES (2)")
        done["at"] = time.monotonic()

    _in_thread(database, write).join(5)
    holder.join(5)
    assert 0 <= done["at"] - committed["at"] < PROMPT


def test_a_writer_in_another_process_is_waited_for_and_then_followed_promptly(database):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_IN_ANOTHER_PROCESS, str(database)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={"DJANGO_SETTINGS_MODULE": "partner_portal.settings", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    wrapper = _wrapper(database)
    wrapper.cursor().execute("INSERT INTO t VALUES (2)")
    wrote_at = time.time()
    committed_at = float(holder.stdout.readline())
    assert holder.wait(10) == 0
    wrapper.close()
    assert 0 <= wrote_at - committed_at < PROMPT


HOLD_IN_ANOTHER_PROCESS = """
import sys, time
import django
django.setup()
from tests.test_sqlite_write_queue import _wrapper
wrapper = _wrapper(__import__("pathlib").Path(sys.argv[1]))
wrapper.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
wrapper.cursor().execute("INSERT INTO t VALUES (1)")
print("holding", flush=True)
time.sleep(0.4)
wrapper.commit()
print(time.time(), flush=True)
wrapper.set_autocommit(True)
"""


def test_a_writer_kept_waiting_past_its_timeout_is_told_the_database_is_locked(database):
    committed: dict[str, float] = {}
    holder = _hold(database, 0.6, committed)
    failures: list[BaseException] = []

    def write(alias: str) -> None:
        try:
            connections[alias].cursor().execute("INSERT INTO t VALUES (2)")
        except OperationalError as exc:
            failures.append(exc)

    _in_thread(database, write, timeout=0.2).join(5)
    holder.join(5)
    assert len(failures) == 1 and "database is locked" in str(failures[0])


def test_a_rolled_back_transaction_lets_the_next_writer_in(database):
    def fail(alias: str) -> None:
        with pytest.raises(RuntimeError), transaction.atomic(using=alias):
            connections[alias].cursor().execute("INSERT INTO t VALUES (1)")
            with transaction.atomic(using=alias):  # a savepoint inside: still one lock, taken once
                connections[alias].cursor().execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("the work failed: roll back")

    _in_thread(database, fail).join(5)
    done: list[int] = []

    def write(alias: str) -> None:
        cursor = connections[alias].cursor()
        cursor.execute("INSERT INTO t VALUES (2)")
        cursor.execute("SELECT count(*) FROM t")
        done.append(cursor.fetchone()[0])

    _in_thread(database, write, timeout=0.2).join(5)
    assert done == [1]


def _try_from_another_process(database: Path) -> str:
    """What another process gets when it asks for the lock for 0.2 s: "free" or "timed out"."""
    other = subprocess.run(
        [sys.executable, "-c", TRY_FROM_ANOTHER_PROCESS, str(database)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        timeout=30,
    )
    assert other.returncode == 0, other.stderr
    return other.stdout.strip()


def test_the_lock_file_excludes_other_processes_and_times_out(tmp_path):
    lock = write_lock_for(str(tmp_path / "x.sqlite3"))
    assert _try_from_another_process(tmp_path / "x.sqlite3") == "free"
    lock.acquire(1)
    try:
        assert _try_from_another_process(tmp_path / "x.sqlite3") == "timed out"
    finally:
        lock.release()


TRY_FROM_ANOTHER_PROCESS = """
import sys
from partner_portal.sqlite.write_lock import WriteLockTimeout, write_lock_for
try:
    write_lock_for(sys.argv[1]).acquire(0.2)
    print("free")
except WriteLockTimeout:
    print("timed out")
"""


def test_one_process_threads_take_turns(tmp_path):
    lock = write_lock_for(str(tmp_path / "y.sqlite3"))
    lock.acquire(1)
    outcome: list[str] = []

    def other() -> None:
        try:
            lock.acquire(0.1)
            outcome.append("taken")
        except WriteLockTimeout:
            outcome.append("timed out")

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(5)
    lock.release()
    assert outcome == ["timed out"]


def test_a_writer_is_not_starved_by_a_thread_writing_transaction_after_transaction(database):
    stop = threading.Event()
    started = threading.Event()

    def busy(alias: str) -> None:
        while not stop.is_set():
            with transaction.atomic(using=alias):
                connections[alias].cursor().execute("INSERT INTO t VALUES (1)")
                started.set()
                time.sleep(0.005)

    holder = _in_thread(database, busy)
    assert started.wait(5)
    waited: list[float] = []

    def write(alias: str) -> None:
        began = time.monotonic()
        connections[alias].cursor().execute("INSERT INTO t VALUES (2)")
        waited.append(time.monotonic() - began)

    _in_thread(database, write).join(10)
    stop.set()
    holder.join(10)
    # One of the busy thread's transactions at most (5 ms), and thread switches.
    assert waited[0] < PROMPT
