"""StemeDB as an MCP server: the database's reads and signed writes as tools.

The server runs beside the agent (``stemedb mcp``, stdio by default) and holds the
agent's key, so the private key never leaves the agent's host: every write is signed
here and sent to StemeDB over HTTP through :class:`stemedb.client.AsyncClient`.

Every failure (the server's problem answer, an unreachable server, arguments the SDK or
the client refuses) is a tool result with ``isError`` set, never a success: the model
has to see that a write did not happen. A quarantined write is an outcome, not a
failure, and says so: ``quarantined: <reason>``.

``--http`` serves the same tools over streamable HTTP behind a static bearer token
(:func:`http_app`); the SDK's own auth expects an OAuth authorization server, which a
process guarding one agent key does not have.
"""

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..client import ApiError, AsyncClient, ClientError, ConnectionFailed
from ..signing import AgentKey

TOOLS = ("assert", "get", "query", "search", "beliefs", "disputes", "retract")
# A tool call has a model waiting on it: ride out a short rate limit, report a long one
# (an OPEN breaker, a read-only server) at once with its Retry-After.
MAX_RETRY_AFTER = 10.0

_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)

# -- argument types: the descriptions are what a model reads to fill them in -------------


def _about(text: str, **constraints: Any) -> Any:
    return Field(description=text, **constraints)


Json = str | int | float | bool | list[Any] | dict[str, Any]
Id = Annotated[
    str, _about("Assertion id: 64 lowercase hex characters (SHA-256 of the signed body), "
                "or a unique prefix of it of at least 8.")
]
ID_LENGTH, ID_MIN_PREFIX = 64, 8
Subject = Annotated[
    str, _about("What the claim is about, e.g. 'paris' or 'user:alice' (1-512 characters).")
]
Predicate = Annotated[
    str,
    _about("The property or relation, e.g. 'capital_of' or 'prefers_language' (1-256 characters)."),
]
Object = Annotated[
    Json,
    _about(
        "The value claimed: any JSON value but null (string, number, boolean, array or "
        "object; at most 16 KiB as JSON)."
    ),
]
Confidence = Annotated[
    float,
    _about(
        "How sure you are, 0 to 1. Above 0.85 cite evidence; a new agent claiming 0.95 or "
        "more is held for review until it has earned trust.",
        ge=0.0,
        le=1.0,
    ),
]
Evidence = Annotated[
    list[str] | None,
    _about("Sources backing the claim (URLs, document references); at most 32."),
]
Context = Annotated[
    str | None,
    _about("Namespace of the claim, hierarchical with '/', e.g. 'geo' or 'users/alice'."),
]
ValidFrom = Annotated[
    str | None,
    _about("RFC 3339 time from which the claim holds in the world; omit if unknown."),
]
ValidUntil = Annotated[
    str | None, _about("RFC 3339 time until which the claim holds; omit if open-ended.")
]
Supersedes = Annotated[
    str | None,
    _about(
        "Id of an earlier, still active assertion of yours that this one replaces. The old "
        "one stays readable with status 'superseded'."
    ),
]
AsOf = Annotated[
    str | None,
    _about(
        "Answer as the database stood at this moment: an RFC 3339 time or 'lsn:N' (a "
        "journal position). Omit for now."
    ),
]
Cursor = Annotated[str | None, _about("next_cursor of the previous page, to read the next one.")]
SomeSubject = Annotated[str | None, _about("Exact subject.")]
SomePredicate = Annotated[str | None, _about("Exact predicate.")]
SomeObject = Annotated[Json | None, _about("Exact object: the string itself, or the JSON value.")]
SomeContext = Annotated[str | None, _about("Exact context (namespace).")]
ValidAt = Annotated[
    str | None,
    _about(
        "Only claims that hold in the world at this RFC 3339 time: valid_from <= it < "
        "valid_until, a missing bound being open (e.g. '1990-06-01T00:00:00Z' for what was "
        "true then). This is world time; as_of is when the database knew it. Both combine. "
        "Omit to ignore valid time."
    ),
]
Since = Annotated[str | None, _about("Recorded at or after this RFC 3339 time.")]
Until = Annotated[str | None, _about("Recorded before this RFC 3339 time.")]
Inactive = Annotated[bool, _about("Also list superseded and retracted assertions (the history).")]
Words = Annotated[str, _about("Plain words; every word must match (operators are taken as text).")]
BeliefPredicate = Annotated[
    str | None, _about("One predicate; omit for every predicate of the subject.")
]
BeliefContext = Annotated[
    str | None,
    _about("Only claims in this context; '' for claims made without one; omit to pool all."),
]
Reason = Annotated[str, _about("Why it is withdrawn (kept with the retraction).")]


def _limit(default: int) -> Any:
    return _about(f"Page size, 1 to 1000 (default {default}).", ge=1, le=1000)


Limit20 = Annotated[int, _limit(20)]
Limit100 = Annotated[int, _limit(100)]


# -- results ----------------------------------------------------------------------------


def _text(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


def _ok(data: dict[str, Any], text: str | None = None) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text if text is not None else _text(data))],
        structured_content=data,
    )


def _error(text: str, problem: dict[str, Any]) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=problem, is_error=True
    )


def _problem_text(e: ApiError) -> str:
    lines = [str(e)]
    for err in e.errors:
        line = f"- {err.get('field', '?')}: {err.get('message', '')}"
        if line[2:] not in e.detail:
            lines.append(line)
    return "\n".join(lines)


async def _answer(
    call: Awaitable[dict[str, Any]], describe: Callable[[dict[str, Any]], str] | None = None
) -> CallToolResult:
    """Await one SDK call and turn its answer, or its failure, into a tool result."""
    try:
        data = await call
    except ApiError as e:
        return _error(_problem_text(e), {"status": e.status, **e.problem})
    except ConnectionFailed as e:
        title = "StemeDB is unreachable"
        return _error(f"{title}: {e}", {"title": title, "detail": str(e)})
    except (ClientError, ValueError, TypeError) as e:
        # Refused before sending (a bad argument the schema let through, no key).
        title = "Request not sent"
        return _error(f"{title}: {e}", {"title": title, "detail": str(e)})
    return _ok(data, describe(data) if describe else None)


async def _get(client: AsyncClient, value: str) -> dict[str, Any]:
    """One assertion by id, or by a unique prefix of at least 8 hex characters (as the
    tables of the CLI show them): resolved through ``query(id_prefix=…)``."""
    v = value.strip().lower()
    if ID_MIN_PREFIX <= len(v) < ID_LENGTH and all(c in "0123456789abcdef" for c in v):
        page = await client.query(id_prefix=v, include_inactive=True, limit=2)
        ids = [item["id"] for item in page.get("items", [])]
        if len(ids) > 1:
            raise ValueError(f"{v} is the start of several assertion ids; give more of it")
        if ids:
            v = ids[0]
    found: dict[str, Any] = await client.get(v)
    return found


def _write_outcome(data: dict[str, Any]) -> str:
    status = data.get("status")
    if status == "quarantined":
        return (
            f"quarantined: {data.get('reason')} (id {data.get('id')}, quarantine_id "
            f"{data.get('quarantine_id')}); held for review and not served as knowledge "
            "unless an admin approves it"
        )
    if status == "retracted":
        retraction = f"retraction {data.get('id')}, lsn {data.get('lsn')}"
        return f"retracted: {data.get('retracts')} ({retraction})"
    return f"{status}: {data.get('id')} (lsn {data.get('lsn')})"


# -- the server ---------------------------------------------------------------------------


def instructions(agent_id: str) -> str:
    return (
        "StemeDB is an epistemic database: agents record claims (assertions: subject, "
        "predicate, object, confidence, evidence) and it answers what is known, who says "
        "so, how sure they are and what is disputed. You write as agent "
        f"{agent_id}; this server signs your writes with your key. Assertions are never "
        "overwritten: to update one of yours, assert the new value with `supersedes` set "
        "to the old id; to withdraw one, `retract` it. History stays readable. Before "
        "relying on a fact, prefer `beliefs` (trust-weighted across all agents) over a "
        "single assertion, and check `disputes`."
    )


def build_server(client: AsyncClient, agent_id: str) -> MCPServer:
    """An MCP server whose tools call StemeDB through ``client`` (which holds the key)."""
    from ..version import __version__

    server: MCPServer = MCPServer(
        "stemedb",
        version=__version__,
        instructions=instructions(agent_id),
        log_level="WARNING",
    )

    async def assert_(
        subject: Subject,
        predicate: Predicate,
        object: Object,
        confidence: Confidence,
        evidence: Evidence = None,
        context: Context = None,
        valid_from: ValidFrom = None,
        valid_until: ValidUntil = None,
        supersedes: Supersedes = None,
    ) -> CallToolResult:
        """Record a claim as an assertion signed with your key.

        Never edit: to correct or update one of your own claims, assert the new value
        with `supersedes` set to the old id. The outcome is 'accepted: <id>' (stored) or
        'quarantined: <reason>' (Duplicate, LowQuality or UntrustedHighConfidence: held
        for human review, not served as knowledge unless approved)."""
        call = client.assert_(
            subject, predicate, object, confidence, evidence=evidence, context=context,
            valid_from=valid_from, valid_until=valid_until, supersedes=supersedes,
        )  # fmt: skip
        return await _answer(call, _write_outcome)

    async def get(id: Id) -> CallToolResult:
        """Fetch one assertion by id: its status (active, superseded, retracted,
        quarantined, rejected), the claim, the agent that signed it, when it was recorded,
        and the signed raw body and signature so anyone can re-verify it."""
        return await _answer(_get(client, id))

    Agent = Annotated[str | None, _about(f"Only this agent's (64 hex). Yours is {agent_id}.")]

    async def query(
        subject: SomeSubject = None,
        predicate: SomePredicate = None,
        object: SomeObject = None,
        agent_id: Agent = None,
        context: SomeContext = None,
        since: Since = None,
        until: Until = None,
        as_of: AsOf = None,
        valid_at: ValidAt = None,
        include_inactive: Inactive = False,
        limit: Limit100 = 100,
        cursor: Cursor = None,
    ) -> CallToolResult:
        """List assertions matching exact filters, newest first; only active ones unless
        include_inactive. Answers {items, next_cursor}; pass next_cursor as cursor for
        the next page."""
        call = client.query(
            subject=subject, predicate=predicate, object=object, agent_id=agent_id,
            context=context, since=since, until=until, as_of=as_of, valid_at=valid_at,
            include_inactive=include_inactive or None, limit=limit, cursor=cursor,
        )  # fmt: skip
        return await _answer(call)

    async def search(
        q: Words, limit: Limit20 = 20, cursor: Cursor = None, as_of: AsOf = None
    ) -> CallToolResult:
        """Full-text search over the subject, predicate and object text of active
        assertions, best match first. Answers {items, next_cursor}."""
        return await _answer(client.search(q, limit=limit, cursor=cursor, as_of=as_of))

    async def beliefs(
        subject: Annotated[str, _about("The subject to ask about.")],
        predicate: BeliefPredicate = None,
        context: BeliefContext = None,
        as_of: AsOf = None,
        valid_at: ValidAt = None,
        limit: Limit100 = 100,
        cursor: Cursor = None,
    ) -> CallToolResult:
        """What the database believes about a subject, across all agents: each distinct
        object claimed, with a score in [0, 1] from the agents behind it weighted by
        their trust, confidence and independent evidence, and 'contested' when several
        objects have strong support. Prefer this to any single assertion."""
        call = client.beliefs(
            subject, predicate=predicate, context=context, as_of=as_of, valid_at=valid_at,
            limit=None if predicate else limit, cursor=cursor,
        )  # fmt: skip
        return await _answer(call)

    async def disputes(
        subject: SomeSubject = None,
        predicate: SomePredicate = None,
        limit: Limit100 = 100,
        cursor: Cursor = None,
        as_of: AsOf = None,
    ) -> CallToolResult:
        """Contested questions: (subject, predicate, context) keys on which several
        objects have strong support, most contested first, with the competing objects
        and their scores. Ask `beliefs` for the assertions behind one."""
        call = client.disputes(
            subject=subject, predicate=predicate, limit=limit, cursor=cursor, as_of=as_of
        )
        return await _answer(call)

    async def retract(id: Id, reason: Reason = "") -> CallToolResult:
        """Withdraw one of your own active assertions. It stays readable with status
        'retracted'. To replace a value rather than withdraw it, assert the new one with
        `supersedes`."""
        return await _answer(client.retract(id, reason), _write_outcome)

    write = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    server.add_tool(assert_, name="assert", title="Assert a claim", annotations=write)
    server.add_tool(get, title="Get an assertion", annotations=_READ)
    server.add_tool(query, title="Query assertions", annotations=_READ)
    server.add_tool(search, title="Full-text search", annotations=_READ)
    server.add_tool(beliefs, title="Beliefs about a subject", annotations=_READ)
    server.add_tool(disputes, title="Open disputes", annotations=_READ)
    withdraw = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True)
    server.add_tool(retract, title="Retract an assertion", annotations=withdraw)
    return server


# -- transports -------------------------------------------------------------------------


class BearerToken:
    """ASGI wrapper that lets through only requests carrying ``Authorization: Bearer
    <token>``; anything else is answered 401 before it reaches the MCP endpoint."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("a bearer token is required")
        self.app = app
        self._token = token.encode()

    def _allowed(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                # compare_digest: the time taken says nothing about how much matched.
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    credentials.strip(), self._token
                )
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._allowed(scope):
            problem = {
                "type": "about:blank",
                "title": "Unauthorized",
                "status": 401,
                "detail": "this MCP endpoint needs 'Authorization: Bearer <token>'",
            }
            response = JSONResponse(
                problem,
                status_code=401,
                media_type="application/problem+json",
                headers={"WWW-Authenticate": 'Bearer realm="stemedb-mcp"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def http_app(server: MCPServer, token: str, host: str = "127.0.0.1") -> ASGIApp:
    """The streamable HTTP app (endpoint ``/mcp``) behind the bearer token."""
    return BearerToken(server.streamable_http_app(host=host), token)


async def serve_stdio(client: AsyncClient, agent_id: str) -> None:
    try:
        await build_server(client, agent_id).run_stdio_async()
    finally:
        await client.aclose()


async def serve_http(
    client: AsyncClient, agent_id: str, *, token: str, host: str, port: int
) -> None:
    import uvicorn

    app = http_app(build_server(client, agent_id), token, host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    try:
        await uvicorn.Server(config).serve()
    finally:
        await client.aclose()


def make_client(url: str, key: AgentKey, token: str | None = None) -> AsyncClient:
    """The tools' client; ``token`` (else ``STEMEDB_TOKEN``) is sent on reads."""
    return AsyncClient(url, key, token=token, max_retry_after=MAX_RETRY_AFTER)
