"""`python -m bench --mode quick|full [--only ingest,callbacks,...]`: run the benchmarks, write
their reports under bench/results/ and print where they are."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from bench import callbacks, dashboard, delivery, ingest, ingest_embedded, memory, prune, senders, steady
from bench.report import Report
from bench.runner import MODES, Context, context, log, mode_from_environment

BENCHMARKS: dict[str, Callable[[Context], Report]] = {
    "ingest": ingest.run,
    "ingest-embedded": ingest_embedded.run,
    "callbacks": callbacks.run,
    "senders": senders.run,
    "delivery": delivery.run,
    "delivery-steady": steady.run,
    "delivery-embedded": delivery.run_embedded,
    "delivery-slow": delivery.run_slow,
    "memory": memory.run,
    "dashboard": dashboard.run,
    "prune": prune.run,
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--mode", choices=sorted(MODES), default="quick")
    parser.add_argument(
        "--only", default="", help=f"comma-separated benchmarks to run (default all: {', '.join(BENCHMARKS)})"
    )
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    started = time.monotonic()
    written, misses = [], 0
    with context(mode_from_environment(MODES[args.mode])) as ctx:
        for name in names:
            log(f"{name}: starting")
            report = BENCHMARKS[name](ctx)
            path = report.write()
            written.append(path)
            misses += len(report.missed)
            log(f"{name}: wrote {path}")
    log(f"done in {(time.monotonic() - started) / 60:.1f} min; {misses} figure(s) missed their goal; reports:")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
