"""Load and measurement tools: wrk runs, CPU and memory of process trees, py-spy profiles.

Everything here talks to 127.0.0.1 only and every run or wait is bounded in time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from bench.runner import WRK_SCRIPT

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


# ----------------------------------------------------------------------------- wrk


@dataclass(frozen=True)
class WrkResult:
    """One wrk run, as bench/wrk/post.lua summarised it."""

    requests: int
    seconds: float
    statuses: dict[int, int]
    errors: dict[str, int]
    latency_ms: dict[str, float]
    wraps: int = 0
    slow: int = 0  # responses that took slow_ms or longer (post.lua's slow_ms=, one connection per thread)

    def count(self, status: int) -> int:
        return self.statuses.get(status, 0)

    def rate(self, status: int) -> float:
        """Responses with `status` per second of the run."""
        return self.count(status) / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        statuses = ", ".join(f"{code}: {n:,}" for code, n in sorted(self.statuses.items())) or "none"
        errors = ", ".join(f"{name} {n}" for name, n in self.errors.items() if n) or "none"
        return (
            f"{self.requests:,} requests in {self.seconds:.1f} s; statuses {statuses}; socket errors {errors}; "
            f"latency p50 {self.latency_ms['p50']:.1f} ms, p99 {self.latency_ms['p99']:.1f} ms, "
            f"max {self.latency_ms['max']:.1f} ms"
        )


def _wrk_command(url: str, *, connections: int, seconds: float, threads: int, args: Sequence[str]) -> list[str]:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("bench only ever loads 127.0.0.1")
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "20s",
        "-s",
        str(WRK_SCRIPT),
        url,
        "--",
        *args,
        f"threads={threads}",
    ]


def _wrk_parse(output: str, command: Sequence[str]) -> WrkResult:
    match = re.search(r"^WRKJSON (\{.*\})$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no summary ({' '.join(command[:6])} ...):\n{output[-2000:]}")
    data = json.loads(match.group(1))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        statuses={int(code): n for code, n in data["statuses"].items()},
        errors=data["errors"],
        latency_ms={name: value / 1000 for name, value in data["latency_us"].items()},
        wraps=data.get("wraps", 0),
        slow=data.get("slow", 0),
    )


def wrk(url: str, *, connections: int, seconds: float, args: Sequence[str], threads: int = 1) -> WrkResult:
    """Run wrk for `seconds` against `url` with bench/wrk/post.lua and its `args` (key=value)."""
    command = _wrk_command(url, connections=connections, seconds=seconds, threads=threads, args=args)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    return _wrk_parse(done.stdout + done.stderr, command)


class WrkInBackground:
    """wrk running while something else is measured (a profile, a count of rows); `stop()`
    interrupts it the way Ctrl-C does, so it still prints its summary."""

    def __init__(self, url: str, *, connections: int, seconds: float, args: Sequence[str], threads: int = 1) -> None:
        self.command = _wrk_command(url, connections=connections, seconds=seconds, threads=threads, args=args)
        self.seconds = seconds
        self.popen = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> WrkResult:
        if self.running():
            self.popen.send_signal(signal.SIGINT)
        try:
            output, _ = self.popen.communicate(timeout=self.seconds + 60)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            output, _ = self.popen.communicate(timeout=10)
        return _wrk_parse(output, self.command)


# ----------------------------------------------------------------------------- /proc


def _stat(pid: int) -> Optional[tuple[int, int, int, int]]:
    """(parent pid, CPU ticks used by the process and its reaped children, the part of them spent
    in the kernel, RSS in pages)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may hold spaces; the fields after it are plain.
    fields = text[text.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return ppid, utime + stime + cutime + cstime, stime + cstime, int(fields[21])


Stats = dict[int, tuple[int, int, int, int]]


def _all_stats() -> Stats:
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                stats[int(entry)] = stat
    return stats


def tree(root: int, stats: Optional[Stats] = None) -> list[int]:
    """`root` and every process descended from it that is alive now."""
    stats = stats if stats is not None else _all_stats()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            found.append(pid)
            todo.extend(children.get(pid, []))
    return found


def children(pid: int) -> list[int]:
    """The live processes whose parent is `pid` (a gunicorn master's workers)."""
    return [child for child, (ppid, _, _, _) in _all_stats().items() if ppid == pid]


def rss_mib(roots: Sequence[int]) -> float:
    """Resident memory of the process trees under `roots`, in MiB (shared pages counted per process)."""
    stats = _all_stats()
    pages = sum(stats[pid][3] for root in roots for pid in tree(root, stats))
    return pages * PAGE_KIB / 1024


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, all cores together."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class CpuUse:
    """Cores used over a measured interval, per named process tree, and by the machine."""

    seconds: float
    cores: dict[str, float]
    kernel: dict[str, float]  # the part of `cores` spent in the kernel (system calls, switches)
    machine_cores: float
    machine_busy: float

    @property
    def others(self) -> float:
        """Cores busy with processes outside the measured trees (other work on a shared machine)."""
        return max(0.0, self.machine_busy - sum(self.cores.values()))

    def describe(self) -> str:
        parts = ", ".join(
            f"{name} {value:.2f} ({self.kernel[name]:.2f} in the kernel)" for name, value in self.cores.items()
        )
        return (
            f"cores used over {self.seconds:.1f} s: {parts}; everything else on the machine {self.others:.2f} "
            f"(machine busy {self.machine_busy:.2f} of {self.machine_cores:.0f})"
        )


def cpu_bound(cpu: CpuUse, per_unit_ms: float, unit: str, *, who: str = "the portal's processes") -> str:
    """What a CPU cost per unit means on this machine: the most its cores could do, and whether
    the measured run was CPU-bound (the cores all but fully busy) or waiting on something else."""
    if per_unit_ms <= 0:
        return ""
    cap = cpu.machine_cores * 1000 / per_unit_ms
    # Above this share the scheduler's own gaps are all that is left: treat it as saturated.
    busy = cpu.machine_busy >= 0.85 * cpu.machine_cores
    verdict = (
        f"The machine was {cpu.machine_busy:.2f} of {cpu.machine_cores:.0f} cores busy: the run was CPU-bound, "
        f"and {cpu.others:.2f} cores went to work outside the portal (the load generator and whatever else ran "
        "on this shared machine)."
        if busy
        else f"The machine was only {cpu.machine_busy:.2f} of {cpu.machine_cores:.0f} cores busy: something other "
        "than CPU (waiting on locks, round trips, the network) held the rate down."
    )
    return (
        f"Altogether {who} spent **{per_unit_ms:.1f} ms of CPU per {unit}**; with all "
        f"{cpu.machine_cores:.0f} cores and nothing else running, that caps this machine at about **{cap:,.0f} "
        f"{unit}s per second**. {verdict}"
    )


class CpuMeter:
    """CPU time of named process trees between `start()` and `stop()`.

    A tree's time is its live processes' own time plus what their exited children used once
    reaped, so PostgreSQL backends that come and go are counted with the postmaster.
    """

    def __init__(self, roots: Mapping[str, Sequence[int]]) -> None:
        self.roots = dict(roots)
        self._start: dict[str, tuple[int, int]] = {}
        self._machine: tuple[int, int] = (0, 0)
        self._started = 0.0

    def _ticks(self) -> dict[str, tuple[int, int]]:
        """(all ticks, kernel ticks) per tree."""
        stats = _all_stats()
        ticks = {}
        for name, roots in self.roots.items():
            pids = [pid for root in roots for pid in tree(root, stats)]
            ticks[name] = (sum(stats[pid][1] for pid in pids), sum(stats[pid][2] for pid in pids))
        return ticks

    def start(self) -> CpuMeter:
        self._start = self._ticks()
        self._machine = _machine_ticks()
        self._started = time.monotonic()
        return self

    def stop(self) -> CpuUse:
        elapsed = time.monotonic() - self._started
        ticks = self._ticks()
        busy, total = _machine_ticks()
        cores = os.cpu_count() or 1
        busy_delta, total_delta = busy - self._machine[0], total - self._machine[1]

        def used(name: str, part: int) -> float:
            return max(0, ticks[name][part] - self._start.get(name, (0, 0))[part]) / CLOCK_TICKS / elapsed

        return CpuUse(
            seconds=elapsed,
            cores={name: used(name, 0) for name in self.roots},
            kernel={name: used(name, 1) for name in self.roots},
            machine_cores=cores,
            machine_busy=cores * busy_delta / total_delta if total_delta else 0.0,
        )


def wait_until(condition: object, *, timeout: float, what: str, interval: float = 0.25) -> None:
    """Poll `condition()` until it is true; RuntimeError naming `what` after `timeout` seconds."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ----------------------------------------------------------------------------- py-spy


def py_spy() -> Optional[str]:
    """py-spy from the virtualenv (requirements-dev.txt), else from PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


# Where a frame's file lives decides what part of the stack it is charged to, first match wins.
COMPONENTS = (
    ("PostgreSQL driver (psycopg)", ("psycopg/", "psycopg_binary", "psycopg_pool")),
    ("Django ORM (query building, rows to objects)", ("django/db/",)),
    ("Django templates", ("django/template/", "django/templatetags/")),
    ("Django REST framework", ("rest_framework/", "drf_spectacular/")),
    ("Celery, kombu and the Redis client", ("celery/", "kombu/", "redis/", "billiard/", "vine/", "amqp/")),
    ("HTTP client (requests, urllib3)", ("requests/", "urllib3/", "http/client.py")),
    ("HTTP client (aiohttp)", ("aiohttp/", "yarl/", "multidict/", "propcache/")),
    ("asyncio event loop", ("asyncio/", "selectors.py")),
    ("concurrent.futures and threading", ("concurrent/futures/", "threading.py")),
    ("gunicorn", ("gunicorn/",)),
    ("logging", ("logging/",)),
    ("JSON", ("json/",)),
    ("django-axes", ("axes/",)),
    ("WhiteNoise", ("whitenoise/",)),
    ("Django (request handling, middleware, auth, sessions)", ("django/",)),
    ("portal code: leads/", ("leads/",)),
    ("portal code: grants/", ("grants/",)),
    ("portal code: portal/", ("portal/",)),
    ("portal code: sandbox/", ("sandbox/",)),
)
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]+)(?::\d+)?\)$")


def component(frame_file: str) -> str:
    for name, markers in COMPONENTS:
        if any(marker in frame_file for marker in markers):
            return name
    return "Python itself and other libraries"


@dataclass
class Profile:
    """A py-spy CPU profile (idle threads excluded), summarised."""

    samples: int
    by_component: list[tuple[str, float]]  # share of samples whose innermost frame is there
    top_self: list[tuple[str, float]]  # innermost functions
    top_portal: list[tuple[str, float]]  # the portal's own functions, inclusive
    error: str = ""
    processes: int = 0
    seconds: float = 0.0
    raw_path: Optional[Path] = field(default=None, repr=False)

    def markdown(self, *, what: str) -> str:
        if self.error:
            return f"py-spy could not profile {what}: {self.error}"
        if not self.samples:
            return f"py-spy took no samples of {what} (nothing was running on a CPU)."
        lines = [
            f"py-spy at 100 Hz for {self.seconds:.0f} s, {self.samples:,} samples of {what} ({self.processes} "
            f"process{'' if self.processes == 1 else 'es'}), taken only from the thread holding the GIL: where "
            "the Python CPU time went (waiting on PostgreSQL, Redis or the network is not in it). On average "
            f"{self.samples / (100 * self.seconds) if self.seconds else 0:.2f} processes held their GIL at any "
            "moment. Share of samples by where the innermost frame is:",
            "",
            "| Part of the stack | Share of CPU samples |",
            "|---|---|",
            *(f"| {name} | {share:.0%} |" for name, share in self.by_component),
            "",
            "Innermost functions (self time):",
            "",
            *(f"- {share:.1%} `{frame}`" for frame, share in self.top_self),
        ]
        if self.top_portal:
            lines += [
                "",
                "The portal's own functions, with everything they call (inclusive time):",
                "",
                *(f"- {share:.0%} `{frame}`" for frame, share in self.top_portal),
            ]
        return "\n".join(lines)


def _frames(stack: str) -> list[tuple[str, str]]:
    frames = []
    for part in stack.split(";"):
        if part.startswith(("process ", "thread ")):
            continue
        match = _FRAME.match(part)
        frames.append((match.group("function"), match.group("file")) if match else (part, ""))
    return frames


def summarize(raw: str, *, top: int = 12) -> Profile:
    """Summarise py-spy's raw (collapsed stacks) output: `frame;frame;... count` per line."""
    total = 0
    by_component: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    portal: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = _frames(stack)
        if not frames:
            continue
        function, file = frames[-1]
        by_component[component(file)] += count
        self_time[f"{function} ({file})"] += count
        seen = {f"{function} ({file})" for function, file in frames if component(file).startswith("portal code")}
        for frame in seen:
            portal[frame] += count
    share = (lambda n: n / total) if total else (lambda n: 0.0)
    return Profile(
        samples=total,
        by_component=[(name, share(n)) for name, n in by_component.most_common()],
        top_self=[(frame, share(n)) for frame, n in self_time.most_common(top)],
        top_portal=[(frame, share(n)) for frame, n in portal.most_common(top)],
    )


def profile(pid: int, *, seconds: float, output: Path) -> Profile:
    """A CPU profile of `pid` and its children (gunicorn's or Celery's workers) for `seconds`."""
    binary = py_spy()
    if binary is None:
        return Profile(0, [], [], [], error="py-spy is not installed (requirements-dev.txt has it)")
    command = [
        binary,
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "100",
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(output),
    ]
    processes = len(tree(pid))
    # --gil keeps only samples of the thread holding the GIL: the Python CPU time that bounds a
    # threaded worker (threads waiting on PostgreSQL or a socket drop out). Without it, py-spy
    # counts some of those waits as activity.
    done = subprocess.run([*command, "--gil"], capture_output=True, text=True, timeout=seconds + 60, check=False)
    if not output.exists():
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if not output.exists():
        return Profile(0, [], [], [], error=(done.stderr or done.stdout).strip()[-500:] or f"exit {done.returncode}")
    result = summarize(output.read_text(errors="replace"))
    result.processes = processes
    result.seconds = seconds
    result.raw_path = output
    return result
