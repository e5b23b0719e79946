"""Asking a worker to run a delivery pump. The outbox rows are the truth; a message is a hint.

A pump claims whatever is due, so one hint serves every lead accepted meanwhile. A web process
therefore publishes at most one hint per PUMP_HINT_INTERVAL, and one at a time
(partner_portal.hints): a pump started by the previous hint is still running (it lingers
DELIVERY_PUMP_IDLE_SECONDS, far longer, before it stops for lack of work) and finds the new
delivery on its next claim.
"""

from django.conf import settings

from partner_portal.hints import HintThrottle
from partner_portal.publish import hint, hint_on_commit

# Each publish costs the web process a broker round trip and kombu's CPU; twice a second is
# plenty while a pump lingers DELIVERY_PUMP_IDLE_SECONDS.
PUMP_HINT_INTERVAL = 0.5

_hints = HintThrottle()


def _interval() -> float:
    # It must stay well under the pump's idle linger, or a throttled hint could leave a delivery
    # for the sweeper (see the module docstring).
    return min(PUMP_HINT_INTERVAL, settings.DELIVERY_PUMP_IDLE_SECONDS / 2)


def pump_hint(*, force: bool = False) -> bool:
    """Publish a pump task unless one was published moments ago or is being published. Never
    raises: with the broker down the request still succeeds, and the sweeper asks again once
    the broker is back."""
    # Imported here because the task module imports the services that call this one.
    from leads.tasks import deliveries_pump_task

    return hint(_hints, deliveries_pump_task, interval=_interval(), force=force, then="the sweeper asks again")


def pump_hint_on_commit() -> None:
    """Ask for a pump once the current transaction has committed what it should deliver."""
    hint_on_commit(_hints, pump_hint)
