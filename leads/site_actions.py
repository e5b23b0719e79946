"""What staff do to a site's deliveries: grant the site (which releases its held deliveries),
release or cancel the held ones, resume its circuit. Each action records its own audit entry in
its transaction. Granting lives here rather than in grants.services because the entry counts the
held deliveries it releases, which are leads' to know."""

import uuid
from typing import NamedTuple, Optional

from django.contrib.auth.models import User
from django.db import transaction

from core.audit import audit_record
from grants import services
from grants.models import Partner, Site
from leads import bulk, queue
from leads.circuit import circuit_resume, circuit_state
from leads.delivery import deliveries_release_held
from leads.models import Delivery


class Granted(NamedTuple):
    site: Site
    previous: Optional[str]  # the site's status before, None if it was new
    held_released: int


def site_grant(*, partner: Partner, site_uuid: uuid.UUID, name: str, note: str, actor: User) -> Granted:
    """Grant the site by hand (creating it if new); its held deliveries go out on commit."""
    previous = partner.sites.filter(site_uuid=site_uuid).values_list("status", flat=True).first()
    with transaction.atomic():
        # Counted in the grant's transaction: granting releases exactly these (on commit).
        held = Delivery.objects.filter(
            lead__partner=partner, lead__site__site_uuid=site_uuid, status=Delivery.Status.HELD
        ).count()
        site = services.site_grant(
            partner=partner, site_uuid=site_uuid, source=Site.Source.MANUAL, name=name, note=note, actor=actor
        )
        if previous != site.status:
            audit_record(
                actor=actor,
                action="site.grant",
                obj=site,
                partner=partner,
                before={"status": previous},
                after={"status": site.status, "source": site.source, "held_released": held},
                reason=note,
            )
    return Granted(site, previous, held)


def site_held_release(*, site: Site, actor: User) -> int:
    """Send the site's held deliveries now (only a sendable site's). Returns how many."""
    with transaction.atomic():
        released = deliveries_release_held(site=site)
        if released:
            audit_record(
                actor=actor, action="site.release_held", obj=site, partner=site.partner, after={"released": released}
            )
    return released


def site_held_cancel(*, site: Site, actor: User) -> int:
    """Cancel the site's held deliveries and those waiting behind them. Returns how many."""
    with transaction.atomic():
        cancelled = bulk.deliveries_cancel_held(site=site)
        if cancelled:
            audit_record(
                actor=actor, action="site.cancel_held", obj=site, partner=site.partner, after={"cancelled": cancelled}
            )
    return cancelled


def site_circuit_resume(*, site: Site, actor: User) -> bool:
    """Close the site's delivery circuit now. True if it was open."""
    before = circuit_state(site)
    with transaction.atomic():
        resumed = circuit_resume(site=site, actor=actor)
        if resumed:
            audit_record(
                actor=actor,
                action="site.circuit_resume",
                obj=site,
                partner=site.partner,
                before={
                    "circuit": before["state"],
                    "consecutive_failures": before["consecutive_failures"],
                    "retry_at": before["retry_at"],
                    "last_error": before["last_error"],
                },
                after={"circuit": "closed", "consecutive_failures": 0},
            )
            # Deliveries that fell due while the circuit was open go out with a pump now, not at
            # the next sweep.
            queue.pump_hint_on_commit()
    return resumed
