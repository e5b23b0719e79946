"""A monotonic clock moved by hand, for the per-process caches' time bounds (no sleeping)."""


class ManualClock:
    """Stands in for `time.monotonic` where a module reads it; `now` is moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
