"""The operations tests push, deliver and look at pages: the leads tests' fixtures (a key, a
granted site, RG mocked at the HTTP edge, Celery inline) and the dashboard tests' (signed-in
staff, plain static files)."""

from tests.leads.conftest import credentials, inline_tasks, push, rg, site  # noqa: F401
from tests.portal.conftest import plain_static_storage, root_client, superuser  # noqa: F401
