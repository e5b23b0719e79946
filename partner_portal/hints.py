"""Throttling the hints a web process publishes for background work (a delivery pump, callback
processing). The database rows are the truth; a hint only asks a worker to look, and a worker
that was asked moments ago will find the new rows too. So a process publishes at most one hint
per interval, and one at a time: a broker that does not answer then holds one request thread
for its connection timeout, not all of them. partner_portal.publish publishes through it.

`quiet()` is read on every accepted push and callback, so it takes no lock and reads no setting.
A publish that failed (broker down) does not count: the next one goes at once.
"""

import math
import threading
from time import monotonic


class HintThrottle:
    """At most one hint per interval, and one being published at a time, across this process's
    threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._quiet_until = -math.inf
        self._going = False

    def quiet(self) -> bool:
        """Whether a hint now would be redundant: one went out less than its interval ago. Read
        without the lock: a stale answer at worst lets one more hint through, or drops one that
        the work started a moment ago covers anyway."""
        return monotonic() < self._quiet_until

    def start(self, interval: float, *, force: bool = False) -> bool:
        """Whether to publish now; if so, the next `interval` seconds are quiet. `force` ignores
        the interval, not a publish already under way (that one asks for the same work)."""
        with self._lock:
            now = monotonic()
            if self._going or (not force and now < self._quiet_until):
                return False
            self._quiet_until, self._going = now + interval, True
            return True

    def done(self, *, succeeded: bool = True) -> None:
        """The publish is over; one that failed does not count, so the next may go at once."""
        with self._lock:
            self._going = False
            if not succeeded:
                self._quiet_until = -math.inf
