"""The web benchmarks' rule for lopsided rounds (bench/web.py): a round in which one gunicorn
worker sat mostly idle measured wrk's accept race, not the code, so it is measured again and
shown apart; after LOPSIDED_REMEASURES tries the last one counts as it is."""

from types import SimpleNamespace
from typing import Any

import pytest

from bench import load, web


def a_round(rate: int, *worker_cores: float) -> web.Round:
    result = load.WrkResult(
        requests=rate * 6, seconds=6.0, statuses={201: rate * 6}, errors={}, latency_ms={"p50": 1, "p99": 2, "max": 3}
    )
    cpu = load.CpuUse(
        seconds=6.0, cores={"gunicorn": sum(worker_cores)}, kernel={"gunicorn": 0.1}, machine_cores=2, machine_busy=1.9
    )
    return web.Round(result, cpu, 201, result, tuple(worker_cores))


@pytest.mark.parametrize(
    ("worker_cores", "lopsided"),
    [((0.85, 0.84), False), ((0.9, 0.46), False), ((0.95, 0.3), True), ((1.0,), False), ((), False)],
)
def test_a_round_is_lopsided_when_one_worker_used_under_half_the_busiest_ones_cpu(worker_cores, lopsided):
    assert a_round(1000, *worker_cores).lopsided is lopsided


def compared(monkeypatch: pytest.MonkeyPatch, measured: dict[str, list[web.Round]]) -> web.Comparison:
    def measure(ctx: Any, stack: Any, **kwargs: Any) -> web.Round:
        return measured[stack].pop(0)

    monkeypatch.setattr(web, "measure", measure)
    ctx = SimpleNamespace(mode=SimpleNamespace(rounds=1, http_seconds=6))
    return web.compare(ctx, name="t", baseline="baseline", real="real", path="/", args=[], real_status=201)  # type: ignore[arg-type]


def test_a_lopsided_round_is_set_aside_and_measured_again(monkeypatch):
    lopsided, even, real = a_round(1500, 0.95, 0.1), a_round(3000, 0.85, 0.85), a_round(1300, 0.7, 0.7)

    comparison = compared(monkeypatch, {"baseline": [lopsided, even], "real": [real]})

    assert comparison.rounds == {"baseline": [even], "real": [real]}
    assert comparison.set_aside == {"baseline": [lopsided], "real": []}
    shown = web.rounds_table(comparison)
    assert shown.startswith("1 round(s) set aside as lopsided")
    assert "| baseline | set aside | 201: 1,500/s |" in shown and "0.95 + 0.10" in shown


def test_after_its_remeasures_a_lopsided_round_counts_as_it_is(monkeypatch):
    tries = [a_round(1500 + n, 0.95, 0.1) for n in range(web.LOPSIDED_REMEASURES + 1)]

    comparison = compared(monkeypatch, {"baseline": list(tries), "real": [a_round(1300, 0.7, 0.7)]})

    assert comparison.rounds["baseline"] == [tries[-1]]
    assert comparison.set_aside["baseline"] == tries[:-1]
