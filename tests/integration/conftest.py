"""Fixtures that start real servers: PostgreSQL, Redis and the portal's own processes.

Use them for behaviour that crosses a process boundary (a task published by the web process
and run by a worker, a broker outage, a killed worker). Mark such modules with
`pytestmark = pytest.mark.integration`.

The fixtures, in the order you usually need them:

``postgres`` (session)
    A private PostgreSQL cluster on 127.0.0.1 (see `servers.PostgresServer`).
    ``postgres.create_database("name") -> DATABASE_URL`` gives a new empty database.

``redis`` (session)
    redis-server on a free port, no persistence (see `servers.RedisServer`).
    ``redis.url`` is database 0; ``redis.new_url()`` a database no other caller got.
    ``redis.stop()`` takes the broker down (connections refused) and ``redis.start()`` brings
    it back on the same port. A test that stops it must start it again, in a ``finally``.

``portal_stack`` (function) and ``module_portal_stack`` (module)
    Factories of `servers.PortalStack`, stopped when the test (module) ends, even on failure::

        stack = portal_stack(beat=True, pool="threads", concurrency=4)

    Arguments, all optional and keyword-only:

    - ``database_url``: default, a new database in ``postgres``.
    - ``broker_url``: default, ``redis.new_url()``, so stacks never share queues.
    - ``web`` (True), ``worker`` (True), ``beat`` (False): which processes to start.
    - ``concurrency`` (2) and ``pool`` ("prefork"; "threads", "solo") for the first worker.
    - ``heartbeat_seconds`` (1.0): the beat interval of `core.tasks.heartbeat_record`.
    - ``env``: extra environment variables for every process and `manage()`.
    - ``migrate`` (True): run migrate, collectstatic (once a session) and demo_setup first.

    The stack, once returned, is ready: gunicorn answers, workers logged "ready", beat started.
    It offers:

    - ``base_url``: ``http://127.0.0.1:PORT``; the sandbox is ``base_url + "/sandbox/"``, and
      ``REALGEEKS_API_URL`` points at it (``SANDBOX_ENABLED=1``).
    - ``get(path) -> (status, headers, body)``: an HTTP GET on the web process.
    - ``manage(*args) -> stdout``: ``manage.py`` in the stack's environment (raises on failure).
    - ``sql(query, params) -> rows``: read what the processes wrote, straight from PostgreSQL.
    - ``demo_output``: what ``demo_setup`` printed (the admin password and the demo API key).
    - ``start_worker(concurrency=, pool=)``, ``start_beat()``, ``start_web()``: more processes.
    - ``kill_worker(sig=signal.SIGKILL, name=None)``: crash (or with SIGTERM, warm-stop) the
      newest worker, or the named one ("worker1", ...), with its child processes.
    - ``processes``: name -> `servers.ManagedProcess` (``.alive()``, ``.log_text()``, ``.stop()``).
    - ``env``: the environment dict every process got; ``stop()``: stop everything now.

Tests in other directories import the fixtures by name (one server of each kind per session
still)::

    from tests.integration.conftest import portal_stack, postgres, redis  # noqa: F401

When a test under tests/integration/ fails, the tail of every running stack's process logs is
added to its report (`stack.describe()` gives the same text anywhere).
Servers that cannot start (binary missing) skip the test with a loud reason, or fail it when
``REQUIRE_REAL_SERVERS=1`` (as `.ci/run` sets).

``wait_for(condition, timeout=, what=)`` from `servers` polls with a bound; use it instead of
sleeping.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any, Optional

import pytest

from tests.integration import servers

# Stacks now running, so a failing test's report can show their logs.
_running_stacks: list[servers.PortalStack] = []
_static_collected = False
_database_numbers = itertools.count(1)


# One server of each kind per session, even when a module elsewhere imports these fixtures by
# name (which makes pytest hold a second definition of them).
_postgres: list[servers.PostgresServer] = []
_redis: list[servers.RedisServer] = []


@pytest.fixture(scope="session")
def postgres() -> Iterator[servers.PostgresServer]:
    """A private PostgreSQL cluster for the session; see the module docstring."""
    if _postgres:
        yield _postgres[0]
        return
    bindir = servers.find_postgres_bindir()
    if bindir is None:
        servers.unavailable("PostgreSQL server binaries not found (apt-get install postgresql)")
    assert bindir is not None
    server = servers.PostgresServer(bindir)
    try:
        server.start()
        _postgres.append(server)
        yield server
    finally:
        _postgres.clear()
        server.stop()


@pytest.fixture(scope="session")
def redis() -> Iterator[servers.RedisServer]:
    """A private redis-server for the session; see the module docstring."""
    if _redis:
        yield _redis[0]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        servers.unavailable("redis-server not found (apt-get install redis-server)")
    assert binary is not None
    server = servers.RedisServer(binary)
    try:
        server.start()
        _redis.append(server)
        yield server
    finally:
        _redis.clear()
        server.close()


StackFactory = Callable[..., servers.PortalStack]


def _stack_factory(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackFactory]:
    made: list[servers.PortalStack] = []

    def make(
        *,
        database_url: Optional[str] = None,
        broker_url: Optional[str] = None,
        web: bool = True,
        worker: bool = True,
        beat: bool = False,
        concurrency: int = 2,
        pool: str = "prefork",
        heartbeat_seconds: float = 1.0,
        env: Optional[Mapping[str, str]] = None,
        migrate: bool = True,
    ) -> servers.PortalStack:
        global _static_collected
        if database_url is None:
            postgres_server: servers.PostgresServer = request.getfixturevalue("postgres")
            database_url = postgres_server.create_database(f"portal_{os.getpid()}_{next(_database_numbers)}")
        if broker_url is None:
            redis_server: servers.RedisServer = request.getfixturevalue("redis")
            broker_url = redis_server.new_url()
        options = servers.StackOptions(
            web=web, worker=worker, beat=beat, concurrency=concurrency, pool=pool, heartbeat_seconds=heartbeat_seconds
        )
        stack = servers.PortalStack(
            database_url=database_url,
            broker_url=broker_url,
            root=tmp_path_factory.mktemp("stack"),
            options=options,
            extra_env=env,
        )
        made.append(stack)
        _running_stacks.append(stack)
        if migrate:
            # STATIC_ROOT is the repository's staticfiles/: collecting once a session is enough.
            stack.prepare(collectstatic=not _static_collected)
            _static_collected = True
        return stack.start()

    try:
        yield make
    finally:
        for stack in made:
            stack.stop()
            _running_stacks.remove(stack)


@pytest.fixture
def portal_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackFactory]:
    """Factory of portal stacks stopped at the end of the test; see the module docstring."""
    yield from _stack_factory(request, tmp_path_factory)


@pytest.fixture(scope="module")
def module_portal_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackFactory]:
    """Like `portal_stack`, but its stacks live until the module's last test has run."""
    yield from _stack_factory(request, tmp_path_factory)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for number, stack in enumerate(_running_stacks, start=1):
            report.sections.append((f"portal stack {number} logs ({stack.root})", stack.describe()))
    return report
