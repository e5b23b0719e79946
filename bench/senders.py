"""Senders: how fast, and at what CPU cost, one process keeps K calls in flight to RG, by two
designs the delivery engine could use (issue 9: "measure both, keep the faster"):

- **threads**: K threads sending back to back over one `requests.Session` whose HTTPAdapter pools
  K keep-alive connections (`pool_maxsize=K`, blocking when all are out);
- **aiohttp**: K coroutines on one asyncio event loop sending back to back over one
  `aiohttp.ClientSession` (`TCPConnector(limit=K)`).

Both send the same request the portal sends for a create (a new lead id per request, HTTP Basic
auth, a JSON body) to the stand-in (bench/standin.py) answering in 50 ms, so the ideal rate is
K / 50 ms. Each run is its own process (`python -m bench.senders --sender ...`), which sends a
warm-up of 2K requests first (threads started, connections open), then sends for a fixed time,
and reports its own CPU time (time.process_time: every thread of the process, user and kernel).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import requests
from requests.adapters import HTTPAdapter

from bench import load
from bench.drain import percentile
from bench.ingest import LEAD
from bench.pipeline import StandIn, standin_start
from bench.report import Figure, Report, per_second, ratio, table
from bench.runner import REPO_DIR, SITE_UUID, Context, log

SENDERS = ("threads", "aiohttp")
IN_FLIGHT = (64, 256)
LATENCY_MS = 50
USER_AGENT = "partner-portal-bench/1"
HEADERS = {"Accept": "application/json", "Content-Type": "application/json; charset=utf-8"}
AUTH = ("bench-partner", "not-checked")


# ----------------------------------------------------------------------------- one run (its own process)


def body() -> bytes:
    return json.dumps({**LEAD, "id": str(uuid.uuid4())}).encode()


def pooled_session(in_flight: int) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=in_flight, pool_block=True))
    return session


def send_threads(
    url: str, *, in_flight: int, more: Callable[[], bool], session: requests.Session
) -> tuple[list[float], int]:
    """Requests from `in_flight` threads over one pooled Session while `more()`: latencies, errors."""
    latencies: list[float] = []
    errors = [0]

    def worker() -> None:
        while more():
            started = time.perf_counter()
            try:
                response = session.post(url, data=body(), headers=HEADERS, auth=AUTH, timeout=(5, 20))
                response.text  # noqa: B018  (read the body, as the portal does)
                ok = 200 <= response.status_code < 300
            except requests.RequestException:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                errors[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(in_flight)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0]


async def _send_aiohttp(
    url: str, *, in_flight: int, more: Callable[[], bool], session: aiohttp.ClientSession
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    # aiohttp 3.14 deprecates BasicAuth and `auth=` in favour of a ready-made header.
    headers = {**HEADERS, "Authorization": aiohttp.encode_basic_auth(*AUTH)}

    async def worker() -> None:
        nonlocal errors
        while more():
            started = time.perf_counter()
            try:
                async with session.post(url, data=body(), headers=headers) as response:
                    await response.read()
                    ok = 200 <= response.status < 300
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return latencies, errors


def send_aiohttp(url: str, *, in_flight: int, seconds: float, warmup: int) -> tuple[list[float], int, dict[str, float]]:
    """`warmup` requests, then `seconds` of requests from `in_flight` coroutines over one ClientSession."""

    async def main() -> tuple[list[float], int, dict[str, float]]:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=20)
        connector = aiohttp.TCPConnector(limit=in_flight)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers={"User-Agent": USER_AGENT}) as s:
            await _send_aiohttp(url, in_flight=in_flight, more=counting(warmup), session=s)
            before = _usage()
            more = until(time.perf_counter() + seconds)
            latencies, errors = await _send_aiohttp(url, in_flight=in_flight, more=more, session=s)
            return latencies, errors, _usage_since(before)

    return asyncio.run(main())


def counting(total: int) -> Callable[[], bool]:
    """True `total` times (itertools.count's next() is atomic under the GIL)."""
    counter = itertools.count()
    return lambda: next(counter) < total


def until(deadline: float) -> Callable[[], bool]:
    return lambda: time.perf_counter() < deadline


def _usage() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"wall": time.perf_counter(), "cpu": time.process_time(), "user": usage.ru_utime, "system": usage.ru_stime}


def _usage_since(before: dict[str, float]) -> dict[str, float]:
    after = _usage()
    return {name: after[name] - before[name] for name in before}


def client_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.senders")
    parser.add_argument("--sender", choices=SENDERS, required=True)
    parser.add_argument("--in-flight", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True, help="How long to send, after the warm-up.")
    parser.add_argument("--url", required=True)
    args = parser.parse_args(argv)
    warmup = 2 * args.in_flight
    if args.sender == "threads":
        session = pooled_session(args.in_flight)
        send_threads(args.url, in_flight=args.in_flight, more=counting(warmup), session=session)
        before = _usage()
        more = until(time.perf_counter() + args.seconds)
        latencies, errors = send_threads(args.url, in_flight=args.in_flight, more=more, session=session)
        used = _usage_since(before)
    else:
        latencies, errors, used = send_aiohttp(args.url, in_flight=args.in_flight, seconds=args.seconds, warmup=warmup)
    json.dump({"sent": len(latencies), "errors": errors, "latencies": latencies, **used}, sys.stdout)


# ----------------------------------------------------------------------------- the benchmark


@dataclass(frozen=True)
class Run:
    sender: str
    in_flight: int
    sent: int
    errors: int
    seconds: float
    cpu: float  # seconds of the sending process, all threads
    user: float
    system: float
    p50_ms: float
    p99_ms: float
    standin_cpu: float  # seconds of the stand-in over the run
    machine_busy: float  # cores

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.sent if self.sent else 0.0

    @property
    def standin_cpu_ms(self) -> float:
        return 1000 * self.standin_cpu / self.sent if self.sent else 0.0


def bound(in_flight: int) -> float:
    return in_flight / (LATENCY_MS / 1000)


def measure(ctx: Context, standin: StandIn, sender: str, in_flight: int) -> Run:
    meter = load.CpuMeter({"stand-in": [standin.pid]}).start()
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench.senders", "--sender", sender, "--in-flight", str(in_flight)),
            *("--seconds", f"{ctx.mode.sender_seconds:g}", "--url", f"{standin.url}/rest/sites/{SITE_UUID}/leads"),
        ],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    cpu = meter.stop()
    if done.returncode != 0:
        raise RuntimeError(f"bench.senders --sender {sender} failed:\n{done.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(done.stdout)
    latencies = data["latencies"]
    return Run(
        sender=sender,
        in_flight=in_flight,
        sent=data["sent"],
        errors=data["errors"],
        seconds=data["wall"],
        cpu=data["cpu"],
        user=data["user"],
        system=data["system"],
        p50_ms=1000 * percentile(latencies, 0.5),
        p99_ms=1000 * percentile(latencies, 0.99),
        # The meter also spans the client's start-up; the stand-in is idle then.
        standin_cpu=cpu.cores["stand-in"] * cpu.seconds,
        machine_busy=cpu.machine_busy,
    )


def median(runs: list[Run], key: Callable[[Run], float]) -> Run:
    return sorted(runs, key=key)[len(runs) // 2]


def run(ctx: Context) -> Report:
    mode = ctx.mode
    report = Report("senders", "senders: threads over requests against asyncio over aiohttp", ctx)
    standin = standin_start(ctx, "senders", latency_ms=LATENCY_MS)
    runs: dict[tuple[str, int], list[Run]] = {}
    for number in range(1, mode.rounds + 1):
        for in_flight in IN_FLIGHT:
            # Alternate which sender goes first, so neither always follows the other.
            order = SENDERS if number % 2 else tuple(reversed(SENDERS))
            for sender in order:
                log(f"senders: round {number}/{mode.rounds}, {sender}, {in_flight} in flight")
                runs.setdefault((sender, in_flight), []).append(measure(ctx, standin, sender, in_flight))
    medians = {key: median(value, key=lambda r: r.rate) for key, value in runs.items()}

    for in_flight in IN_FLIGHT:
        limit = bound(in_flight)
        threads, asyncio_run = medians[("threads", in_flight)], medians[("aiohttp", in_flight)]
        for r in (threads, asyncio_run):
            report.add(
                Figure(
                    f"{r.sender}, {in_flight} in flight: requests per second",
                    per_second(r.rate),
                    f"bound {in_flight} / {LATENCY_MS} ms = {per_second(limit)}",
                    ratio(r.rate, limit),
                )
            )
        for r in (threads, asyncio_run):
            report.add(Figure(f"{r.sender}, {in_flight} in flight: CPU per request", f"{r.cpu_ms:.3f} ms"))
        report.add(
            Figure(
                f"aiohttp against threads, {in_flight} in flight: rate",
                per_second(asyncio_run.rate),
                f"threads {per_second(threads.rate)}",
                ratio(asyncio_run.rate, threads.rate),
            )
        )
        report.add(
            Figure(
                f"aiohttp against threads, {in_flight} in flight: CPU per request",
                f"{asyncio_run.cpu_ms:.3f} ms",
                f"threads {threads.cpu_ms:.3f} ms",
                ratio(asyncio_run.cpu_ms, threads.cpu_ms),
            )
        )

    report.summary = summary(medians)
    report.configure(
        {
            "Mode": mode.name,
            "RG stand-in": f"bench/standin.py, its own process, answering every request in {LATENCY_MS} ms",
            "threads": "requests "
            f"{requests.__version__}: K threads, one Session, HTTPAdapter(pool_connections=1, pool_maxsize=K, "
            "pool_block=True), timeout (5, 20) s",
            "aiohttp": f"aiohttp {aiohttp.__version__}: K coroutines on one event loop, one ClientSession, "
            "TCPConnector(limit=K), ClientTimeout(sock_connect=5, sock_read=20)",
            "Requests": f"POST /rest/sites/{{site}}/leads, HTTP Basic auth, a {len(body())}-byte JSON lead with a "
            f"new id each; per run a warm-up of 2K requests, then {mode.sender_seconds:g} s of requests measured",
            "CPU": "the sending process's time.process_time() (user + kernel, every thread) over the measured "
            "requests; the stand-in's from /proc",
            "Rounds": f"{mode.rounds}, the two senders alternating; the median round by rate is reported",
            "Network": "127.0.0.1, the senders and the stand-in on the same machine",
        }
    )
    rows = [
        [
            r.sender,
            r.in_flight,
            number,
            f"{r.sent:,}",
            r.errors,
            f"{r.seconds:.2f}",
            per_second(r.rate),
            f"{ratio(r.rate, bound(r.in_flight)):.2f}",
            f"{r.cpu_ms:.3f} ({1000 * r.system / max(r.sent, 1):.3f})",
            f"{r.p50_ms:.1f} / {r.p99_ms:.1f}",
            f"{r.standin_cpu_ms:.3f}",
            f"{r.machine_busy:.2f}",
        ]
        for (_, _), value in sorted(runs.items(), key=lambda item: (item[0][1], item[0][0]))
        for number, r in enumerate(value, start=1)
    ]
    report.section(
        "Every run",
        table(
            [
                "Sender",
                "In flight",
                "Round",
                "Sent",
                "Errors",
                "Seconds",
                "Rate",
                "Of the bound",
                "CPU ms per request (in the kernel)",
                "Latency p50 / p99 ms",
                "Stand-in CPU ms per request",
                "Machine cores busy",
            ],
            rows,
        ),
    )
    report.section("What it means", meaning(medians, ctx))
    standin.stop()
    return report


def summary(medians: dict[tuple[str, int], Run]) -> str:
    parts = []
    for in_flight in IN_FLIGHT:
        t, a = medians[("threads", in_flight)], medians[("aiohttp", in_flight)]
        parts.append(
            f"with {in_flight} in flight (bound {per_second(bound(in_flight))}), threads over requests sent "
            f"**{per_second(t.rate)}** at {t.cpu_ms:.2f} ms of CPU per request, asyncio over aiohttp "
            f"**{per_second(a.rate)}** at {a.cpu_ms:.2f} ms"
        )
    faster = [
        "aiohttp" if medians[("aiohttp", k)].rate >= medians[("threads", k)].rate else "threads" for k in IN_FLIGHT
    ]
    cheaper = [
        "aiohttp" if medians[("aiohttp", k)].cpu_ms <= medians[("threads", k)].cpu_ms else "threads" for k in IN_FLIGHT
    ]
    verdict = (
        f"**{faster[0]} was faster and cheaper at both sizes.**"
        if len(set(faster + cheaper)) == 1
        else f"Faster: {', '.join(f'{f} at {k}' for f, k in zip(faster, IN_FLIGHT, strict=True))}; cheaper per "
        f"request: {', '.join(f'{c} at {k}' for c, k in zip(cheaper, IN_FLIGHT, strict=True))}."
    )
    return (
        "One process keeping K calls in flight to a stand-in answering in 50 ms: " + "; ".join(parts) + ". " + verdict
    )


def meaning(medians: dict[tuple[str, int], Run], ctx: Context) -> str:
    lines = []
    for in_flight in IN_FLIGHT:
        for sender in SENDERS:
            r = medians[(sender, in_flight)]
            cap = 1000 / r.cpu_ms if r.cpu_ms else 0.0
            lines.append(
                f"- {sender}, {in_flight} in flight: {r.cpu_ms:.2f} ms of CPU per request caps one process (one core, "
                f"one GIL) at about {cap:,.0f} requests/s; it reached {ratio(r.rate, bound(in_flight)):.2f} of the "
                f"bound, p50 {r.p50_ms:.1f} ms against the stand-in's {LATENCY_MS} ms."
            )
    return (
        "A sender's rate is capped by the bound (K / latency) or by its CPU per request (a Python process runs on one "
        "core at a time), whichever is lower; latency above the stand-in's 50 ms is time a finished request waited "
        "for the process to get to it.\n\n"
        + "\n".join(lines)
        + f"\n\nThe stand-in spent about {medians[('aiohttp', IN_FLIGHT[-1])].standin_cpu_ms:.3f} ms per request, so "
        f"it took little of the {ctx.mode.name} run's machine from the senders."
    )


if __name__ == "__main__":
    client_main(sys.argv[1:])
