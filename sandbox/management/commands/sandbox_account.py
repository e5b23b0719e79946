import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox.services import sandbox_account_ensure, sandbox_agent_add


def _agent(text: str) -> dict[str, str]:
    """`id:name:email` as an RG User object (an agent)."""
    user_id, _, rest = text.partition(":")
    name, _, email = rest.rpartition(":")
    if not (user_id and name and email):
        raise ValueError(text)
    return {"id": user_id, "role": "Agent", "name": name, "email": email}


class Command(BaseCommand):
    help = (
        "Create or update sandbox Incoming API credentials allowed to send to the given sites. Sites with no "
        "agents get two demo agents; --agent adds more. Only a hash of the password is stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--site", action="append", required=True, type=uuid.UUID, help="A site UUID; repeat.")
        parser.add_argument(
            "--agent", action="append", default=[], type=_agent, metavar="ID:NAME:EMAIL", help="Add an agent; repeat."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["password"]:
            raise CommandError("--password must not be empty.")
        account = sandbox_account_ensure(
            username=options["username"], password=options["password"], site_uuids=options["site"]
        )
        for site_uuid in options["site"]:
            for agent in options["agent"]:
                sandbox_agent_add(site_uuid=site_uuid, user=agent)
        self.stdout.write(f"{account.username} may send to: {', '.join(account.site_uuids)}")
