"""Benchmarks of the portal against baselines measured in the same run; `python -m bench --help`.

Each benchmark module has a `run(context) -> Report`; `runner` starts the servers they share and
`report` writes their markdown under bench/results/. Nothing here runs in CI or under pytest.
"""
