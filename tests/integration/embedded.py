"""`make run`'s embedded default for tests: SQLite and the filesystem broker in a private var
directory, and honcho over Procfile.dev (the supervised web, worker and beat)."""

import os
import sys
from pathlib import Path
from typing import Any

from tests.integration.servers import REPO_DIR, VENV_BIN, ManagedProcess, http_get, wait_for


def embedded_env(var_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PORTAL_ENV": "development",
        "PORTAL_VAR_DIR": str(var_dir),
        "CELERY_BROKER_URL": "filesystem://",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    env.pop("DATABASE_URL", None)  # SQLite in PORTAL_VAR_DIR, as `make run` uses
    env.pop("REALGEEKS_API_URL", None)
    return env


def manage(env: dict[str, str], log_dir: Path, *args: str, timeout: float = 240) -> str:
    """`manage.py ARGS` in the embedded environment; its output. Fails the test on an error."""
    process = ManagedProcess(
        f"manage-{args[0]}",
        [sys.executable, "manage.py", *args],
        log_path=log_dir / f"manage-{args[0]}.log",
        env=env,
        cwd=REPO_DIR,
    )
    assert process.popen.wait(timeout=timeout) == 0, process.describe()
    return process.log_text()


def honcho_start(env: dict[str, str], log_dir: Path, port: int) -> ManagedProcess:
    """`make run`'s last command; returns once web answers /healthz and worker and beat are up."""
    honcho = ManagedProcess(
        "honcho",
        [str(VENV_BIN / "honcho"), "start", "--procfile", "Procfile.dev"],
        log_path=log_dir / "honcho.log",
        env=env,
        cwd=REPO_DIR,
    )

    def healthy() -> Any:
        assert honcho.alive(), honcho.describe()
        status, _, _ = http_get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        return status == 200

    try:
        wait_for(healthy, timeout=120, what="the web process to answer /healthz")
        wait_for(lambda: honcho.log_text().count(" ready.") >= 1, timeout=120, what="the worker to be ready")
        wait_for(lambda: "beat: Starting" in honcho.log_text(), timeout=60, what="beat to start")
    except BaseException:
        honcho.stop()
        raise
    return honcho
