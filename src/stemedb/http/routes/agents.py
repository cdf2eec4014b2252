"""GET /v1/agents/{agent_id}: trust, counts, first/last seen, breaker state."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..deps import db, json_response, namespaces
from ..openapi import AGENT_ERRORS, api
from ..routing import StrictQueryRoute

router = APIRouter(route_class=StrictQueryRoute, tags=["reads"])


@router.get("/v1/agents/{agent_id}", **api(answer="Agent", errors=AGENT_ERRORS))
def get_agent(request: Request, agent_id: str) -> Response:
    """Trust, counts, first/last seen, breaker state. A reader restricted to namespaces
    sees the counts of the agent's assertions in them (404 for an agent with none)."""
    return json_response(db(request).admin.agent(agent_id, namespaces(request)))
