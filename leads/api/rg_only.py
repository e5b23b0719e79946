"""Paths of RG's Incoming Leads API that only Real Geeks' own Lead Manager may use.

RG's Ruby client has `update_user` and `delete_user` (PUT and DELETE
`/rest/sites/{site_uuid}/users/{user_id}`); RG refuses them with 403 to every other caller,
so no partner's product can ever succeed with them and the portal has nothing to forward.
It answers as RG does: the caller's API key is checked first (a missing or wrong key is a 401,
as on every push path), then the call is refused in RG's error shape. RG does not publish its
message (REALGEEKS_API.md section 1 names only the status), so the wording is ours.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from leads.api.push import ERRORS, PushView

LEAD_MANAGER_ONLY = "Only the Real Geeks Lead Manager may update or delete users."

_REFUSED = extend_schema(
    summary="Reserved to RG's Lead Manager: always 403 (RG: PUT/DELETE /rest/sites/{site_uuid}/users/{user_id})",
    description="RG answers these only for its own Lead Manager, so the portal refuses them as RG would.",
    request=None,
    responses={
        401: ERRORS[401],
        403: OpenApiResponse(description=f'Always, for an authenticated key: `{{"error": "{LEAD_MANAGER_ONLY}"}}`'),
    },
)


class UserChangeView(PushView):
    """Refuses RG's user updates and deletions. A PushView so the caller is authenticated
    exactly as on the push paths; the body is never read (RG refuses whatever it holds), and
    the site is not checked either, since the refusal depends only on who calls."""

    @_REFUSED
    def put(self, request: Request, site_uuid: str, user_id: str) -> Response:
        raise PermissionDenied(LEAD_MANAGER_ONLY)

    @_REFUSED
    def delete(self, request: Request, site_uuid: str, user_id: str) -> Response:
        raise PermissionDenied(LEAD_MANAGER_ONLY)
