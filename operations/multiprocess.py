"""Where each process keeps its metric values, so /metrics can add up every process of a host.

prometheus-client's multiprocess mode: a process writes its counters and histograms to files of
its own (named by its pid) in the folder PROMETHEUS_MULTIPROC_DIR names when it first counts,
and /metrics reads and adds up every such file. One folder per kind of process under
METRICS_DIR:

    web/     gunicorn's workers (gunicorn.conf.py points them here before they are forked)
    worker/  Celery's pool processes (the worker_init signal, before the pool is forked)
    other/   everything else: manage.py commands, beat, tests

A kind's folder is emptied of what dead processes left when a process of that kind starts (a
gunicorn or a Celery worker restarting): its counters start again from zero, which Prometheus
reads as the restart it is. Files of live processes are kept, so a second Celery worker on the
same host, or the web restarting, never erases another's counts. Pids name the files, so a folder
must not be shared between machines or containers (each has pids of its own).

Nothing here imports prometheus-client: the variable must be set before it is first imported.
"""

import contextlib
import os
import re
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
KINDS = ("web", "worker", "other")
# prometheus-client's file names: counter_<pid>.db, histogram_<pid>.db, gauge_<mode>_<pid>.db.
_FILE = re.compile(r"^[a-z]+(?:_[a-z]+)?_(\d+)\.db$")


def use(base: Path) -> Path:
    """Point this process at its kind's folder under `base`, unless a parent process (gunicorn's
    master, Celery's main process) already did; the folder it uses, made if missing."""
    current = os.environ.get(VARIABLE, "")
    folder = Path(current) if current and Path(current).parent == base else base / "other"
    _make(folder)
    os.environ[VARIABLE] = str(folder)
    return folder


def process_start(base: Path, kind: str) -> Path:
    """A gunicorn master or Celery worker starts: its children count in `base/kind`, emptied of
    what dead processes left there (and in `other`, whose processes are one-off commands)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    folder = base / kind
    _make(folder)
    for swept in {folder, base / "other"}:
        dead_processes_forget(swept)
    os.environ[VARIABLE] = str(folder)
    return folder


def dead_processes_forget(folder: Path) -> list[Path]:
    """Remove the files of processes that are no longer running; the files removed."""
    removed = []
    for path in folder.glob("*.db"):
        match = _FILE.match(path.name)
        if match and not _running(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def process_exit(pid: int) -> None:
    """A child process ended (gunicorn's child_exit): prometheus-client's bookkeeping for it.

    The portal keeps no live gauges in processes (its gauges are read from the database), so this
    matters only once one is added; counters stay, so totals never drop while the master runs.
    """
    folder = os.environ.get(VARIABLE)
    if folder:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, folder)


def files(base: Path) -> list[Path]:
    """Every process's file, of every kind."""
    return sorted(path for kind in KINDS for path in (base / kind).glob("*.db"))


def _make(folder: Path) -> None:
    # Like the rest of PORTAL_VAR_DIR, for the user running the portal only.
    for path in (folder.parent, folder):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: running
    return True
