"""`make run`'s supervisor (partner_portal/supervise.py): a process that dies is started again.

The first tests supervise small stand-in processes; the last runs `make run`'s own command
(honcho over Procfile.dev) with the real web, worker and beat, and kills the worker.
"""

import os
import re
import shlex
import signal
import sys
import time
from pathlib import Path

import pytest

from partner_portal.supervise import describe_exit
from tests.integration.embedded import embedded_env, honcho_start, manage
from tests.integration.servers import REPO_DIR, ManagedProcess, free_port, http_get, wait_for

pytestmark = pytest.mark.integration

SUPERVISE = str(REPO_DIR / "partner_portal" / "supervise.py")


def python_line(code: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


# Procfile lines are single lines.
SLEEPER = python_line("import os, time; print('sleeper is up', os.getpid(), flush=True); time.sleep(600)")
# Exits 0 on SIGINT, saying so: shows the supervisor passes the signal on.
POLITE = python_line(
    "import os, signal, sys, time; "
    "signal.signal(signal.SIGINT, lambda *a: (print('polite got SIGINT', flush=True), sys.exit(0))); "
    "print('polite is up', os.getpid(), flush=True); time.sleep(600)"
)
BROKEN = "sh -c 'echo cannot start; exit 3'"


@pytest.fixture
def procfile(tmp_path) -> Path:
    path = tmp_path / "Procfile"
    path.write_text(f"sleeper: {SLEEPER}\npolite: {POLITE}\nbroken: {BROKEN}\n")
    return path


def supervise(tmp_path: Path, procfile: Path, name: str, *options: str) -> ManagedProcess:
    args = [sys.executable, SUPERVISE, name, "--procfile", str(procfile), *options]
    return ManagedProcess(name, args, log_path=tmp_path / f"{name}.log", cwd=REPO_DIR)


def logged_pids(process: ManagedProcess, pattern: str) -> list[int]:
    return [int(pid) for pid in re.findall(pattern, process.log_text())]


def wait_for_pids(process: ManagedProcess, pattern: str, count: int, timeout: float = 30) -> list[int]:
    return wait_for(
        lambda: (pids := logged_pids(process, pattern)) and len(pids) >= count and pids,
        timeout=timeout,
        what=f"{count} x {pattern!r} in {process.log_path}",
    )


def gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_a_killed_process_is_started_again_with_a_message_naming_it(tmp_path, procfile):
    supervisor = supervise(tmp_path, procfile, "sleeper")
    try:
        [first] = wait_for_pids(supervisor, r"sleeper is up (\d+)", 1)
        os.kill(first, signal.SIGKILL)

        second = wait_for_pids(supervisor, r"sleeper is up (\d+)", 2)[1]
        assert second != first
        assert "sleeper exited with code -9 (SIGKILL); restarting in 1 s" in supervisor.log_text()
        assert logged_pids(supervisor, r"sleeper running as pid (\d+)") == [first, second]
        assert supervisor.alive()

        os.kill(supervisor.pid, signal.SIGTERM)
        assert supervisor.popen.wait(timeout=10) == 128 + signal.SIGTERM
        wait_for(lambda: gone(second), timeout=10, what="the supervised process to stop")
    finally:
        supervisor.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_supervisor_killed_outright_takes_its_process_with_it(tmp_path, procfile):
    supervisor = supervise(tmp_path, procfile, "sleeper")
    try:
        [pid] = wait_for_pids(supervisor, r"sleeper is up (\d+)", 1)

        os.kill(supervisor.pid, signal.SIGKILL)  # as honcho does to what is left 5 s after Ctrl-C

        wait_for(lambda: gone(pid), timeout=10, what="the supervised process to die with its supervisor")
    finally:
        supervisor.stop()


def test_sigint_reaches_the_process_and_stops_the_supervisor(tmp_path, procfile):
    supervisor = supervise(tmp_path, procfile, "polite")
    try:
        [pid] = wait_for_pids(supervisor, r"polite is up (\d+)", 1)

        os.kill(supervisor.pid, signal.SIGINT)

        assert supervisor.popen.wait(timeout=10) == 0  # the process's own exit code
        assert "polite got SIGINT" in supervisor.log_text()
        assert "restarting" not in supervisor.log_text()
        assert gone(pid)
    finally:
        supervisor.stop()


def test_a_process_that_cannot_stay_up_makes_the_supervisor_give_up_naming_it(tmp_path, procfile):
    supervisor = supervise(tmp_path, procfile, "broken", "--first-pause", "0.1", "--give-up-after", "3")
    try:
        assert supervisor.popen.wait(timeout=30) == 1
    finally:
        supervisor.stop()

    log = supervisor.log_text()
    assert log.count("cannot start") == 3
    assert "broken exited with code 3; restarting in 0.1 s" in log
    assert "broken exited with code 3; restarting in 0.2 s" in log
    assert "broken exited with code 3, 3 times in a row within 30 s of starting; giving up" in log


def test_an_unknown_process_name_is_an_error(tmp_path, procfile):
    supervisor = supervise(tmp_path, procfile, "nosuch")
    assert supervisor.popen.wait(timeout=30) == 2
    assert "has no process named 'nosuch'" in supervisor.log_text()


def test_exit_codes_name_the_signal():
    assert describe_exit(3) == "3"
    assert describe_exit(-signal.SIGKILL) == "-9 (SIGKILL)"
    assert describe_exit(-signal.SIGTERM) == "-15 (SIGTERM)"


def test_make_run_starts_a_killed_worker_again_and_keeps_the_portal_up_until_ctrl_c(tmp_path):
    """`make run`'s last command, honcho over Procfile.dev, with the real web, worker and beat."""
    port = free_port()
    env = embedded_env(tmp_path / "var", port, GUNICORN_WORKERS="1", CELERY_CONCURRENCY="1")
    manage(env, tmp_path, "migrate", "--noinput")
    honcho = honcho_start(env, tmp_path, port)
    try:

        def healthy() -> bool:
            assert honcho.alive(), honcho.describe()
            status, _, _ = http_get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            return status == 200

        [worker] = logged_pids(honcho, r"worker running as pid (\d+)")

        os.kill(worker, signal.SIGKILL)

        wait_for(
            lambda: "worker exited with code -9 (SIGKILL); restarting in 1 s" in honcho.log_text(),
            timeout=30,
            what="the supervisor to report the dead worker",
        )
        wait_for(lambda: honcho.log_text().count(" ready.") >= 2, timeout=120, what="the new worker to be ready")
        assert healthy()
        [_, restarted] = logged_pids(honcho, r"worker running as pid (\d+)")
        assert not gone(restarted)
        started = logged_pids(honcho, r"(?:web|beat) running as pid (\d+)")
        assert len(started) == 2 and not any(gone(pid) for pid in started)  # the others never stopped

        os.kill(honcho.pid, signal.SIGINT)  # Ctrl-C

        assert honcho.popen.wait(timeout=30) is not None
        everything = [restarted, *started]
        wait_for(lambda: all(gone(pid) for pid in everything), timeout=15, what=f"processes {everything} to stop")
        status = None
        try:
            status, _, _ = http_get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        except OSError:
            pass
        assert status is None
    finally:
        honcho.stop()
    assert "Unrecoverable error" not in honcho.log_text()
    time.sleep(0)  # nothing left running: honcho.stop() killed its whole process group
