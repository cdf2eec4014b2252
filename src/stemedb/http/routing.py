"""Routes that refuse query parameters they do not know.

A misspelled parameter (``?subjekt=paris``) would otherwise be ignored, and the answer
would silently be "everything": like an unknown body field, it is refused with 422
naming it. The parameters a route knows are those FastAPI binds for it (its own and its
dependencies')."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.responses import Response

from ..errors import ValidationFailed


class StrictQueryRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        known = frozenset(_query_names(self.dependant))
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            unknown = [k for k in dict.fromkeys(request.query_params.keys()) if k not in known]
            if unknown:
                raise ValidationFailed([{"field": name, "message": "unknown query parameter"}
                                        for name in unknown])
            return await handler(request)

        return strict


def _query_names(dependant: Dependant) -> list[str]:
    """The query parameters a route binds, its dependencies' included."""
    names = [p.alias for p in dependant.query_params]
    for sub in dependant.dependencies:
        names += _query_names(sub)
    return names
