"""Benchmark-only settings: the portal's own settings, unchanged, plus one switch.

With BENCH_BASELINE=1 the URLconf is `bench.baseline_urls`, which answers the push and callback
paths with a bare view, so a baseline runs under exactly the same settings, middleware, server
and worker count as the real thing. Production URLs never contain the bare view.
"""

from partner_portal.settings import *  # noqa: F403  (the real settings, every one of them)
from partner_portal.settings import env

if env.bool("BENCH_BASELINE", default=False):
    ROOT_URLCONF = "bench.baseline_urls"
