"""The OpenAPI document (``/openapi.json``) and the pages that show it (``/docs``: Swagger
UI, ``/redoc``: ReDoc), served from assets shipped in the ``fastapi-offline`` package:
they work with no network.

A route describes what it takes and answers in its decorator, in one line, with
:func:`api`. It only describes: the route parses its request and builds its answer exactly
as before (no ``response_model``, no body parameter), so hand-parsed and hot routes stay
as fast and as strict::

    from ..openapi import api

    @router.post("/tokens", status_code=201,
                 **api(body=TokenBody, answer="Token", status=201, errors=(404, 409)))
    async def create_token(request: Request, actor: Actor) -> Response: ...

- ``body``: the JSON request body: a Pydantic model (its JSON Schema, as strict as the
  model), a component name of ``schemas.SCHEMAS`` or a JSON Schema dict;
  ``body_required=False`` when the body may be left out. A route with a body answers
  400 (not JSON) and 413 (too large) without saying.
- ``answer``: the JSON body answered with ``status`` (a component name or a schema);
  ``answers={202: "WriteOutcome"}`` for other successful statuses.
- ``errors``: the problem+json statuses the route itself can answer (described from
  ``PROBLEMS``); ``{409: "why"}`` to say why in the route's own words;
  ``errors=AGENT_ERRORS`` for a route taking an agent id or prefix.
- ``signed=True``: the ``X-Agent-Signature`` header of a signed write.

What every route of a kind has is added by path when the document is built
(:func:`install`), so a new route gets it without saying: every ``/v1/admin`` operation
requires the ``bearer`` scheme, takes ``X-Admin-Actor`` and answers 401 and 403 (scope);
every other ``/v1`` GET accepts the bearer scheme optionally and answers 401 (reads may
require a token with scope ``read``); signed writes answer 403 (enrollment); every ``/v1``
operation answers 422 (an unknown query parameter) and 429 (rate limits). Shapes used by more than one route belong in ``schemas.SCHEMAS``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.responses import HTMLResponse

from ..signing import SIGNATURE_HEADER
from .problems import PROBLEM_TYPE
from .schemas import HEX_PREFIX, SCHEMAS, Schema, ref

BEARER = "bearer"
WRITE_PATHS = frozenset({"/v1/assert", "/v1/retract"})  # a batch refuses item by item
ASSETS_PATH = "/docs/assets"

PROBLEMS: dict[int, str] = {
    400: "The body is not valid UTF-8 JSON, or could be read two ways.",
    401: "Missing or invalid credentials.",
    403: "Not allowed (e.g. another agent's assertion).",
    404: "No such resource.",
    409: "Conflict with the current state.",
    413: "The body is too large.",
    415: "Content-Type is not application/json (UTF-8).",
    422: "A field, query parameter or body refused; `errors` names each.",
    429: "Over a rate limit, or the agent's circuit breaker is open; see Retry-After.",
    503: "Read-only or not caught up; see Retry-After.",
}
# Errors of every route that takes an agent id (or a unique prefix of one).
AGENT_ERRORS: dict[int, str] = {404: "No such agent.",  # an agent id or unique prefix
                                409: "The prefix matches several agents."}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again",
                                "schema": {"type": "integer"}}}

SIGNATURE_PARAMETER: Schema = {
    "name": SIGNATURE_HEADER, "in": "header", "required": True,
    "description": "Padded standard base64 (RFC 4648) of the 64-byte Ed25519 signature over "
                   "the exact request body bytes, by the key of the body's `agent_id`.",
    "schema": {"type": "string"},
}
ACTOR_PARAMETER: Schema = {
    "name": "X-Admin-Actor", "in": "header", "required": False,
    "description": "Who acts, for the audit log (`admin:<name>`; `admin` without it).",
    "schema": {"type": "string", "maxLength": 64},
}

TAGS = [
    {"name": "writes", "description": "Signed writes: assertions, batches, retractions."},
    {"name": "reads", "description": "Assertions, search, beliefs, disputes, agents."},
    {"name": "admin", "description": "Quarantine review and the other admin decisions "
                                     "(bearer token required)."},
    {"name": "health", "description": "Liveness and readiness for load balancers."},
]

DESCRIPTION = (
    "An epistemic database for AI agents: signed assertions, a durable journal, content "
    "defense. Every error is `application/problem+json` (RFC 9457) with the request id in "
    "`instance`. Writes are signed with Ed25519 over the exact body bytes "
    f"(`{SIGNATURE_HEADER}`). Admin routes need `Authorization: Bearer <token>`."
)

# Schemas of Pydantic models' nested models, collected as ``api`` meets them.
_model_defs: dict[str, Schema] = {}


def problem(status: int, description: str | None = None) -> Schema:
    """The problem+json answer for ``status`` (a ``responses`` entry)."""
    out: Schema = {"description": description or PROBLEMS.get(status, "A problem."),
                   "content": {PROBLEM_TYPE: {"schema": ref("Problem")}}}
    if status in (429, 503):
        out["headers"] = dict(_RETRY_AFTER)
    return out


def json_answer(schema: str | Schema, description: str = "") -> Schema:
    """A JSON answer (a ``responses`` entry): a component name or a schema."""
    s = ref(schema) if isinstance(schema, str) else schema
    name = schema if isinstance(schema, str) else ""
    return {"description": description or name or "OK",
            "content": {"application/json": {"schema": s}}}


def schema_of(body: str | Schema | type[BaseModel]) -> Schema:
    if isinstance(body, str):
        return ref(body)
    if isinstance(body, dict):
        return body
    schema = body.model_json_schema(ref_template="#/components/schemas/{model}")
    _model_defs.update(schema.pop("$defs", {}))
    return schema


def api(*, body: str | Schema | type[BaseModel] | None = None, body_required: bool = True,
        answer: str | Schema | None = None, status: int = 200,
        answers: Mapping[int, str | Schema] | None = None,
        errors: Iterable[int] | Mapping[int, str] = (), signed: bool = False) -> dict[str, Any]:
    """Keyword arguments for a route decorator describing the route (see the module doc)."""
    responses: dict[int | str, Any] = {}
    if answer is not None:
        responses[status] = json_answer(answer)
    for code, shape in (answers or {}).items():
        responses[code] = json_answer(shape)
    why = errors if isinstance(errors, Mapping) else dict.fromkeys(errors, "")
    for code, text in why.items():
        responses[code] = problem(code, text or None)
    extra: dict[str, Any] = {}
    if body is not None:
        for code in (400, 413):
            responses.setdefault(code, problem(code))
        extra["requestBody"] = {"required": body_required,
                                "content": {"application/json": {"schema": schema_of(body)}}}
    if signed:
        extra["parameters"] = [SIGNATURE_PARAMETER]
    out: dict[str, Any] = {"responses": responses}
    if extra:
        out["openapi_extra"] = extra
    return out


def build(app: FastAPI) -> dict[str, Any]:
    """The document: FastAPI's, with the shared schemas, the security scheme and what
    every route of a kind answers."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=DESCRIPTION,
                      routes=app.routes, tags=TAGS)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):  # ours is Problem
        schemas.pop(unused, None)
    schemas.update(_model_defs)
    schemas.update(SCHEMAS)
    components["securitySchemes"] = {BEARER: {
        "type": "http", "scheme": "bearer",
        "description": "An admin token on /v1/admin (docs/admin.md#the-admin-token); on "
                       "reads, a token with scope read when the server requires one."}}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            _by_kind(path, method, op)
    app.openapi_schema = doc
    return doc


def _by_kind(path: str, method: str, op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    for code, answer in list(responses.items()):
        if code == "422" and "application/json" in answer.get("content", {}):
            responses[code] = problem(422)  # FastAPI's default, not what is answered
    for param in op.get("parameters", []):
        if param["name"] == "agent_id" and "pattern" not in param.get("schema", {}):
            param["schema"]["pattern"] = HEX_PREFIX  # an id or a prefix: the route checks
    if not path.startswith("/v1/"):
        return
    responses.setdefault("422", problem(422))
    responses.setdefault("429", problem(429))
    if path.startswith("/v1/admin"):
        op.setdefault("security", [{BEARER: []}])
        responses.setdefault("401", problem(401, "Missing, unknown, expired or revoked token."))
        responses.setdefault("403", problem(403, "The token's scope does not allow this."))
        params = op.setdefault("parameters", [])
        if not any(p.get("name") == ACTOR_PARAMETER["name"] for p in params):
            params.append(ACTOR_PARAMETER)
    elif method == "get":
        op.setdefault("security", [{}, {BEARER: []}])  # optional: anonymous or a token
        # [auth] read = "token" (or a token presented) that is missing, unknown or expired
        responses.setdefault("401", problem(401, "A token is needed, or the one sent is "
                                                 "unknown, expired or revoked."))
    elif path in WRITE_PATHS:
        responses.setdefault("403", problem(403, "The agent key is not enrolled, was revoked, "
                                                 "or writes outside its namespaces."))


def assets_dir() -> Path:
    """Swagger UI's and ReDoc's files, as the ``fastapi-offline`` package ships them."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def install(app: FastAPI) -> None:
    """The document at ``app.openapi_url``, ``/docs`` and ``/redoc``, and their assets
    under ``/docs/assets`` (create the app with ``docs_url=None, redoc_url=None``)."""
    app.openapi = lambda: build(app)  # type: ignore[method-assign]
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_dir()), name="docs-assets")
    title = app.title

    def urls(request: Request) -> tuple[str, str]:
        root = str(request.scope.get("root_path", ""))
        return root + str(app.openapi_url), root + ASSETS_PATH

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        spec, assets = urls(request)
        return _local_only(get_swagger_ui_html(
            openapi_url=spec, title=f"{title} API", oauth2_redirect_url=None,
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None}))

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        spec, assets = urls(request)
        return _local_only(get_redoc_html(openapi_url=spec, title=f"{title} API",
                                          redoc_js_url=f"{assets}/redoc.standalone.js",
                                          redoc_favicon_url=f"{assets}/favicon.png",
                                          with_google_fonts=False))


# The pages may load only from this server: ReDoc's footer shows a logo from its CDN,
# which the browser then does not even ask for (the footer's text stays).
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
            "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'")


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page
