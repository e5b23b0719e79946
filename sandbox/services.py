"""Operations on the sandbox's state."""

import uuid

from sandbox.models import SandboxAccount


def sandbox_account_ensure(*, username: str, password: str, site_uuids: list[uuid.UUID]) -> SandboxAccount:
    """The account with this username, created or updated to this password, adding these sites."""
    account = SandboxAccount.objects.filter(username=username).first() or SandboxAccount(username=username)
    account.set_password(password)
    account.site_uuids = sorted(set(account.site_uuids) | {str(s) for s in site_uuids})
    account.save()
    return account
