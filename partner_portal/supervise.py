"""Run one of the Procfile's processes and start it again when it dies (`make run` only).

honcho, which `make run` uses, stops every process as soon as one exits, so one crashed worker
would take the whole portal down. `make run` therefore gives honcho `Procfile.dev`, whose lines
run the Procfile's through this script (run as a file, so it imports neither Django nor Celery):

    python partner_portal/supervise.py worker

A process that exits is started again, after a pause that doubles while it keeps failing
(1 s, 2 s, 4 s, ... at most 30 s), and the log says so: `worker exited with code -9 (SIGKILL);
restarting in 1 s`. A process that exits within 30 s of each of 5 starts in a row is broken,
not unlucky (a port in use, a bad setting): the supervisor then says so and exits, and honcho
stops the other processes. SIGINT and SIGTERM are passed to the process and stop the
supervisor once it has exited, so Ctrl-C still stops everything.

Production does not use this: the orchestrator restarts a container whose process exits
(`restart:` in docker-compose.yml).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Optional

PROCFILE = Path(__file__).resolve().parent.parent / "Procfile"


def procfile_command(name: str, procfile: Path = PROCFILE) -> str:
    """The command line of process type `name` in the Procfile (as honcho reads it)."""
    for line in procfile.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line.strip())
        if match and match.group(1) == name:
            return match.group(2)
    raise LookupError(f"{procfile} has no process named {name!r}")


def describe_exit(returncode: int) -> str:
    """`1`, or `-9 (SIGKILL)` for a process killed by a signal."""
    if returncode < 0:
        with_name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else "signal"
        return f"{returncode} ({with_name})"
    return str(returncode)


@dataclass
class Policy:
    first_pause: float = 1.0
    max_pause: float = 30.0
    # A run this long was a real run: the pause and the failure count start again.
    stable_after: float = 30.0
    # This many exits in a row, each within `stable_after` of its start: give up.
    give_up_after: int = 5
    # After passing on SIGINT or SIGTERM, wait this long before killing the process. honcho
    # kills what is left 5 s after Ctrl-C; doing it first means nothing escapes it.
    stop_timeout: float = 4.0


class Supervisor:
    """Runs `command` (a shell command line) as `name`, restarting it by `policy`."""

    def __init__(self, name: str, command: str, policy: Policy) -> None:
        self.name = name
        self.command = command
        self.policy = policy
        self._child: Optional[subprocess.Popen[bytes]] = None
        self._stop_signal: Optional[int] = None
        self._stop_deadline = float("inf")

    def say(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def run(self) -> int:
        """Supervise until a signal stops it (the process's exit code) or the process gives up (1)."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        pause = self.policy.first_pause
        quick_exits = 0
        while self._stop_signal is None:
            started = time.monotonic()
            returncode = self._run_once()
            if self._stop_signal is not None:
                break
            if time.monotonic() - started >= self.policy.stable_after:
                pause, quick_exits = self.policy.first_pause, 0
            quick_exits += 1
            if quick_exits >= self.policy.give_up_after:
                self.say(
                    f"{self.name} exited with code {describe_exit(returncode)}, {quick_exits} times in a row "
                    f"within {self.policy.stable_after:g} s of starting; giving up (restarting will not help)"
                )
                return 1
            self.say(f"{self.name} exited with code {describe_exit(returncode)}; restarting in {pause:g} s")
            self._sleep(pause)
            pause = min(pause * 2, self.policy.max_pause)
        else:
            returncode = -self._stop_signal  # stopped while waiting to restart
        return returncode if returncode >= 0 else 128 - returncode

    def _run_once(self) -> int:
        """Start the process, wait for it to exit, and remove anything it left behind."""
        # `exec`: the shell expands the line (${CELERY_CONCURRENCY:-4}), then becomes the process.
        # Its own process group: a signal sent to ours (honcho's Ctrl-C) reaches it once, from us.
        child = subprocess.Popen(  # noqa: S603
            ["/bin/sh", "-c", f"exec {self.command}"],
            process_group=0,
            preexec_fn=_die_with_parent,  # safe: the supervisor starts no threads
        )
        self._child = child
        self.say(f"{self.name} running as pid {child.pid}")
        if self._stop_signal is not None:  # a signal came while it was starting
            self._forward(self._stop_signal)
        try:
            while True:
                try:
                    return child.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    if time.monotonic() > self._stop_deadline:
                        self.say(f"{self.name} did not stop within {self.policy.stop_timeout:g} s; killing it")
                        _kill_group(child.pid, signal.SIGKILL)
        finally:
            self._child = None
            # Children of a process that was killed (Celery's pool, gunicorn's workers) must not
            # outlive it: they would hold its port or its work while the next one starts.
            _kill_group(child.pid, signal.SIGKILL)

    def _on_signal(self, signum: int, frame: Optional[FrameType]) -> None:
        if self._stop_signal is None:
            self._stop_deadline = time.monotonic() + self.policy.stop_timeout
        self._stop_signal = signum
        self._forward(signum)

    def _forward(self, signum: int) -> None:
        # To the process alone: gunicorn and Celery stop their own children in order.
        child = self._child
        if child is not None and child.returncode is None:
            try:
                os.kill(child.pid, signum)
            except ProcessLookupError:  # it exited meanwhile
                pass

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self._stop_signal is None and time.monotonic() < deadline:
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))


def _kill_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):  # nothing left in it
        pass


def _die_with_parent() -> None:
    """In the child before it runs: on Linux, be killed if the supervisor itself is killed."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python partner_portal/supervise.py",
        description="Run one Procfile process, starting it again when it exits.",
    )
    parser.add_argument("name", help="the process type in the Procfile: web, worker or beat")
    parser.add_argument("--procfile", type=Path, default=PROCFILE)
    defaults = Policy()
    parser.add_argument("--first-pause", type=float, default=defaults.first_pause, help="seconds before a restart")
    parser.add_argument("--max-pause", type=float, default=defaults.max_pause, help="longest pause")
    parser.add_argument("--stable-after", type=float, default=defaults.stable_after, help="seconds of a good run")
    parser.add_argument("--give-up-after", type=int, default=defaults.give_up_after, help="quick exits in a row")
    parser.add_argument("--stop-timeout", type=float, default=defaults.stop_timeout, help="seconds to stop")
    args = parser.parse_args(argv)
    try:
        command = procfile_command(args.name, args.procfile)
    except (LookupError, OSError) as exc:
        parser.error(str(exc))
    policy = Policy(
        first_pause=args.first_pause,
        max_pause=args.max_pause,
        stable_after=args.stable_after,
        give_up_after=args.give_up_after,
        stop_timeout=args.stop_timeout,
    )
    return Supervisor(args.name, command, policy).run()


if __name__ == "__main__":
    sys.exit(main())
