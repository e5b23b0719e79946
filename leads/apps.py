from typing import Any

from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"

    def ready(self) -> None:
        from grants.signals import site_granted

        site_granted.connect(_release_held_on_grant, dispatch_uid="leads.release_held_on_grant")


def _release_held_on_grant(sender: Any, site: Any, **kwargs: Any) -> None:
    # The grant has committed (grants sends the signal on commit); a failure here must not
    # break the grant, and the sweeper releases whatever this misses.
    from leads.delivery import deliveries_release_held

    deliveries_release_held(site=site)
