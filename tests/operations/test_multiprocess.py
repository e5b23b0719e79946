"""Where each process keeps its metric values: a folder per kind of process, emptied of what dead
processes left when a process of that kind starts, and never of a live process's files."""

import os
import runpy
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from operations import multiprocess
from operations.apps import _worker_starting

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def variable(monkeypatch):
    """PROMETHEUS_MULTIPROC_DIR as it was, restored after the test."""
    monkeypatch.setenv(multiprocess.VARIABLE, os.environ.get(multiprocess.VARIABLE, ""))


def touch(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"")
    return path


def test_a_process_counts_in_the_other_folder_unless_its_master_chose_one(tmp_path, variable):
    os.environ[multiprocess.VARIABLE] = "/somewhere/else"
    assert multiprocess.use(tmp_path / "metrics") == tmp_path / "metrics" / "other"
    assert os.environ[multiprocess.VARIABLE] == str(tmp_path / "metrics" / "other")
    # Like the rest of PORTAL_VAR_DIR, for the portal's user only.
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "metrics", tmp_path / "metrics" / "other")} == {0o700}

    os.environ[multiprocess.VARIABLE] = str(tmp_path / "web")
    assert multiprocess.use(tmp_path) == tmp_path / "web"
    assert (tmp_path / "web").is_dir()


def test_a_starting_master_forgets_dead_processes_of_its_kind_and_keeps_the_living(tmp_path, dead_pid, variable):
    mine_dead = touch(tmp_path / "worker", f"counter_{dead_pid}.db")
    mine_dead_histogram = touch(tmp_path / "worker", f"histogram_{dead_pid}.db")
    mine_alive = touch(tmp_path / "worker", f"counter_{os.getpid()}.db")
    command_dead = touch(tmp_path / "other", f"counter_{dead_pid}.db")
    web_dead = touch(tmp_path / "web", f"counter_{dead_pid}.db")

    folder = multiprocess.process_start(tmp_path, "worker")

    assert folder == tmp_path / "worker"
    assert os.environ[multiprocess.VARIABLE] == str(folder)
    assert not mine_dead.exists() and not mine_dead_histogram.exists() and not command_dead.exists()
    assert mine_alive.exists()
    # The web's counters reset only when the web restarts: they are its own.
    assert web_dead.exists()
    assert multiprocess.files(tmp_path) == sorted([web_dead, mine_alive])


def test_a_childs_exit_drops_its_live_gauges_and_keeps_its_counters(tmp_path, dead_pid, variable):
    os.environ[multiprocess.VARIABLE] = str(tmp_path)
    gauge = touch(tmp_path, f"gauge_livesum_{dead_pid}.db")
    counter = touch(tmp_path, f"counter_{dead_pid}.db")

    multiprocess.process_exit(dead_pid)

    assert not gauge.exists() and counter.exists()


def test_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        multiprocess.process_start(tmp_path, "cron")


def test_gunicorns_master_points_its_workers_at_the_web_folder(tmp_path, settings, variable):
    settings.METRICS_DIR = tmp_path
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))

    config["on_starting"](None)

    assert os.environ[multiprocess.VARIABLE] == str(tmp_path / "web")


def test_celerys_main_process_points_its_pool_at_the_worker_folder(tmp_path, settings, variable):
    settings.METRICS_DIR = tmp_path

    _worker_starting(sender=None)

    assert os.environ[multiprocess.VARIABLE] == str(tmp_path / "worker")
