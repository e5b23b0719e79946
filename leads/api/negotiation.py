"""Content negotiation for an API that only speaks JSON."""

from collections.abc import Iterable
from typing import Any, Optional

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class JsonOnly(DefaultContentNegotiation):
    """Always the first renderer (JSON), whatever Accept says: RG answers JSON to everyone, and
    clients written for RG send Accept headers we should not refuse with a 406."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: Optional[str] = None
    ) -> tuple[BaseRenderer, Any]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type
