"""The markdown reports under bench/results/: the machine, the configuration, each figure next to
its baseline from the same run (as a ratio), the goal, pass or miss, and why a miss missed."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bench.runner import REPO_DIR, RESULTS_DIR, Context


@dataclass(frozen=True)
class Figure:
    """One measured figure. `ratio` is value / baseline unless given; `passed` None means no goal."""

    measure: str
    value: str
    baseline: str = "-"
    ratio: Optional[float] = None
    goal: str = "-"
    passed: Optional[bool] = None

    def row(self) -> list[str]:
        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}"
        verdict = {True: "**pass**", False: "**miss**", None: "-"}[self.passed]
        return [self.measure, self.value, self.baseline, ratio, self.goal, verdict]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _command_line(args: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else "unknown"


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    load = os.getloadavg()
    return {
        "CPU cores": f"{os.cpu_count()} ({model})",
        "Memory": f"{memory_kib / 1024 / 1024:.1f} GiB",
        "Load average as this benchmark began (1, 5, 15 min; earlier benchmarks of the run count in it)": ", ".join(
            f"{value:.2f}" for value in load
        ),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "Redis": _command_line(["redis-server", "--version"]),
        "wrk": _command_line(["wrk", "--version"]).split(" Copyright")[0],
    }


def source_version() -> str:
    """The commit measured, and whether the tree differed from it (read-only git calls)."""
    commit = _command_line(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"])
    dirty = _command_line(["git", "-C", str(REPO_DIR), "status", "--porcelain", "--untracked-files=no"])
    return f"{commit}{' with uncommitted changes' if dirty not in ('', 'unknown') else ''}"


@dataclass
class Report:
    """One benchmark's report; `write()` puts it at bench/results/<name>-<mode>.md."""

    name: str
    title: str
    context: Context
    summary: str = ""
    figures: list[Figure] = field(default_factory=list)
    configuration: dict[str, str] = field(default_factory=dict)
    sections: list[tuple[str, str]] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    machine: dict[str, str] = field(default_factory=machine)

    def configure(self, values: Mapping[str, object]) -> None:
        self.configuration.update({name: str(value) for name, value in values.items()})

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def section(self, title: str, text: str) -> None:
        self.sections.append((title, text))

    @property
    def missed(self) -> list[Figure]:
        return [figure for figure in self.figures if figure.passed is False]

    def markdown(self) -> str:
        mode = self.context.mode
        elapsed = time.time() - self.started
        header = [
            f"# Benchmark: {self.title}",
            "",
            f"Mode **{mode.name}** (`BENCH_MODE={mode.name} make bench`), run "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(self.started))}, took {elapsed / 60:.1f} min, "
            f"source {source_version()}. Every baseline below was measured in this same run, on this machine.",
        ]
        if self.summary:
            header += ["", self.summary]
        parts = [
            "\n".join(header),
            "## Results\n\n"
            + table(
                ["Measure", "Value", "Baseline (same run)", "Ratio", "Goal", "Verdict"], [f.row() for f in self.figures]
            ),
            "## Machine\n\n" + table(["", ""], list(self.machine.items())),
            "## Configuration\n\n" + table(["", ""], list(self.configuration.items())),
        ]
        parts += [f"## {title}\n\n{text.strip()}" for title, text in self.sections]
        return "\n\n".join(parts) + "\n"

    def write(self) -> Path:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{self.name}-{self.context.mode.name}.md"
        path.write_text(self.markdown())
        return path


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else 0.0


def per_second(value: float) -> str:
    return f"{value:,.0f}/s" if value >= 100 else f"{value:,.1f}/s"


def milliseconds(value: float) -> str:
    return f"{value:,.1f} ms"


def common_configuration(ctx: Context) -> dict[str, str]:
    g = ctx.gunicorn
    pg = ctx.postgres_settings()
    return {
        "Mode": ctx.mode.name,
        "Web server": f"gunicorn.conf.py as in production: {g['worker_class']}, {g['workers']} workers x "
        f"{g['threads']} threads; access log on",
        "Django": "PORTAL_ENV=production, DEBUG off, secrets from the environment, bench.settings (the real settings)",
        "PostgreSQL": f"{pg['server_version']}, local, the integration tests' throwaway cluster: shared_buffers "
        f"{pg['shared_buffers']}, work_mem {pg['work_mem']}, fsync {pg['fsync']}, synchronous_commit "
        f"{pg['synchronous_commit']} (a commit does not wait for a disk flush here; on a production disk it does, "
        "amortised by group commit, so expect write rates somewhat below these)",
        "Broker": "Redis, local, no persistence",
        "Network": "everything on 127.0.0.1, load generator on the same machine",
    }


def statements_markdown(result: dict[str, Any], *, what: str, top: int = 8, warm: bool = True) -> str:
    """A request's SQL (from `Context.statements`) as a report shows it: how many statements,
    the slowest, and the plan of the slowest when there is one."""
    statements = result["statements"]
    total = sum(s["ms"] for s in statements)
    slowest = sorted(statements, key=lambda s: s["ms"], reverse=True)[:top]
    lines = [
        f"{len(statements)} SQL statements for {what}, {total:.1f} ms in the database driver altogether "
        + (
            "(in-process through Django's test client, the last of a few runs). "
            if warm
            else "(in-process through Django's test client, one run). "
        )
        + "The slowest:",
        "",
        *(f"- {s['ms']:.1f} ms: `{shorten(s['sql'])}`" for s in slowest),
    ]
    if "explain" in result:
        lines += ["", "Plan of the slowest (EXPLAIN ANALYZE, BUFFERS):", "", "```", *result["explain"]["plan"], "```"]
    return "\n".join(lines)


def shorten(statement: str, limit: int = 220) -> str:
    flat = " ".join(statement.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
