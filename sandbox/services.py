"""Operations on the sandbox's accounts and the agents its sites list."""

import uuid
from typing import Any

from django.db import transaction

from sandbox.models import SandboxAccount, SandboxUser

# Every site starts with these, so `GET users` and agent assignment work with no setup.
# 14187 is the user id in RG's own assignment example.
DEMO_AGENTS: tuple[dict[str, Any], ...] = (
    {
        "id": "14187",
        "role": "Agent",
        "admin": True,
        "name": "Kalani Akana",
        "email": "kalani.akana@sandbox.invalid",
        "signature": "Kalani Akana, Demo Realty",
        "phone_company": "",
        "phone_office": "808-555-0100",
        "phone_cell": "808-555-0101",
        "phone_home": "",
    },
    {
        "id": "14188",
        "role": "Agent",
        "admin": False,
        "name": "Mele Kahale",
        "email": "mele.kahale@sandbox.invalid",
        "signature": "Mele Kahale, Demo Realty",
        "phone_company": "",
        "phone_office": "808-555-0110",
        "phone_cell": "808-555-0111",
        "phone_home": "",
    },
)


@transaction.atomic
def sandbox_account_ensure(*, username: str, password: str, site_uuids: list[uuid.UUID]) -> SandboxAccount:
    """The account with this username, created or updated to this password, adding these sites.

    Each of the sites that lists no agent yet gets the demo agents.
    """
    account = SandboxAccount.objects.filter(username=username).first() or SandboxAccount(username=username)
    account.set_password(password)
    account.site_uuids = sorted(set(account.site_uuids) | {str(s) for s in site_uuids})
    account.save()
    for site_uuid in site_uuids:
        if not SandboxUser.objects.filter(site_uuid=site_uuid).exists():
            for agent in DEMO_AGENTS:
                sandbox_agent_add(site_uuid=site_uuid, user=agent)
    return account


def sandbox_agent_add(*, site_uuid: uuid.UUID, user: dict[str, Any]) -> SandboxUser:
    """The site's user with `user["id"]`, created or replaced by this RG User object."""
    agent, _ = SandboxUser.objects.update_or_create(
        site_uuid=site_uuid, user_id=str(user["id"]), defaults={"data": {**user, "id": str(user["id"])}}
    )
    return agent


def sandbox_agents(*, site_uuid: uuid.UUID) -> list[dict[str, Any]]:
    """The site's users as `GET /sites/{site}/users` answers them."""
    return [agent.data for agent in SandboxUser.objects.filter(site_uuid=site_uuid)]
