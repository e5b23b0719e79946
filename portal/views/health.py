"""/healthz, for load balancers: is the portal able to work (core.health checks)."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core import health


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer; 503 naming what does not (for load balancers).

    `workers_last_seen` (seconds since a worker's last heartbeat, or null) is information only.
    """
    problems = {
        name: problem
        for name, problem in (("database", health.database_problem()), ("broker", health.broker_problem()))
        if problem
    }
    workers_last_seen = health.workers_last_seen()
    if problems:
        body = {"status": "unavailable", "problems": problems, "workers_last_seen": workers_last_seen}
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ok", "workers_last_seen": workers_last_seen})
