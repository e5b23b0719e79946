"""One exception handler for the whole API: every error is RG's `{"error": "..."}` shape."""

from typing import Any, Optional

from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from leads.services import DeliveryStateError
from leads.validation import PayloadError


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."


class UpstreamError(APIException):
    """Real Geeks could not answer a pass-through request (users list)."""

    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "Real Geeks did not answer."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Optional[Response]:
    if isinstance(exc, PayloadError):
        return Response({"error": exc.message}, status=exc.status)
    if isinstance(exc, DeliveryStateError):
        # 409: the request is fine, the delivery's state forbids it right now.
        return Response({"error": exc.message}, status=status.HTTP_409_CONFLICT)
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = {"error": _message(response.data)}
    return response


def _message(data: Any) -> str:
    """DRF's detail, or its per-field errors flattened to `field: message; ...`."""
    if isinstance(data, dict):
        if set(data) == {"detail"}:
            return _message(data["detail"])
        return "; ".join(f"{field}: {_message(value)}" for field, value in data.items())
    if isinstance(data, list):
        return " ".join(_message(item) for item in data)
    return str(data)
