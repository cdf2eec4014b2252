"""Request plumbing of the dashboard: templates, sessions, CSRF, forms, redirects."""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ..access import PRINCIPAL_KEY, Principal, principal_of, visible_namespaces
from ..errors import Forbidden, StemeError
from ..model import parse_time
from .sessions import (
    BOOTSTRAP_REF,
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    Session,
    SessionStore,
    tokens_equal,
)

if TYPE_CHECKING:
    from ..engine import Database

log = logging.getLogger("stemedb.dashboard")

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
FORM_LIMIT = 256 * 1024
ACTOR = "dashboard"  # who decides when the bootstrap admin token signed in
BOOTSTRAP = Principal(name=ACTOR, scope="admin", namespaces=("*",))


# -- formatting -------------------------------------------------------------------------


def fmt_num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _dt(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def fmt_when(value: str | None) -> str:
    dt = _dt(value)
    return "—" if dt is None else dt.strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_ago(value: str | None, now: datetime | None = None) -> str:
    dt = _dt(value)
    if dt is None:
        return "—"
    secs = ((now or datetime.now(UTC)) - dt).total_seconds()
    future = secs < 0
    secs = abs(secs)
    if secs < 60:
        text = f"{secs:.0f} s"
    elif secs < 3600:
        text = f"{secs // 60:.0f} min"
    elif secs < 86400 * 2:
        text = f"{secs / 3600:.1f} h"
    else:
        text = f"{secs / 86400:.0f} d"
    return f"in {text}" if future else f"{text} ago"


def short_id(value: str | None, n: int = 12) -> str:
    if not value:
        return "—"
    return value if len(value) <= n else value[:n] + "…"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def safe_link(url: Any) -> str | None:
    """``url`` when it is a plain http(s) link, else None (rendered as text)."""
    if (
        isinstance(url, str)
        and url.lower().startswith(("http://", "https://"))
        and not any(c in url for c in "\"'<> \n\r\t")
    ):
        return url
    return None


def make_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(("html",), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=fmt_num,
        pct=fmt_pct,
        when=fmt_when,
        ago=fmt_ago,
        short=short_id,
        pretty=pretty_json,
        safe_link=safe_link,
    )
    env.globals.update(urlencode=urlencode)
    return env


# -- the app's shared state ----------------------------------------------------------------


def db_of(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


def namespaces_of(request: Request) -> tuple[str, ...] | None:
    """What the signed-in principal may see (``access.visible_namespaces``): None for
    everything, else only items whose assertion lies in these namespaces."""
    return visible_namespaces(principal_of(request.scope))


def sessions_of(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.sessions
    return store


def client_address(request: Request) -> str:
    """The client address sign-in attempts are counted on: the TCP peer, or the
    ``X-Forwarded-For`` client when the peer is a trusted proxy ([rate_limit])."""
    peer = request.client.host if request.client else None
    return db_of(request).guards.address(peer, request.headers.get("x-forwarded-for"))


def is_https(request: Request) -> bool:
    """TLS on this hop, or on the hop before a trusted proxy (``X-Forwarded-Proto`` from a
    peer in ``[rate_limit] trusted_proxies``)."""
    if request.url.scheme == "https":
        return True
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    if proto != "https" or request.client is None:
        return False
    try:
        peer = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    return any(peer in net for net in db_of(request).guards.trusted_proxies)


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, samesite="strict", secure=is_https(request)
    )


# -- who is asking -------------------------------------------------------------------------


class AuthRequired(Exception):
    """No valid session: a redirect to /login for pages, 401 for actions and JSON."""


class CsrfFailed(Exception):
    """A state-changing request without the session's CSRF token: 403."""


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return ("application/json" in accept and "text/html" not in accept) or request.headers.get(
        "x-requested-with", ""
    ) != ""


def current_session(request: Request) -> Session:
    """The request's live session; one whose token was revoked or expired since sign-in
    is signed out."""
    store = sessions_of(request)
    s = store.get(request.cookies.get(SESSION_COOKIE))
    if s is None:
        raise AuthRequired()
    principal = session_principal(request, s)
    if principal is None:
        store.destroy(s)
        raise AuthRequired()
    request.state.session = s
    request.scope.setdefault(PRINCIPAL_KEY, principal)  # what namespaces_of reads
    return s


def session_principal(request: Request, session: Session) -> Principal | None:
    """Who signed this session in: the bootstrap admin, or a scoped token still live
    (None once it is revoked or expired)."""
    if session.ref == BOOTSTRAP_REF:
        return BOOTSTRAP
    return db_of(request).tokens.by_ref(session.ref)


def actor(request: Request, session: Session) -> str:
    """Who a decision is recorded as: the signed-in token's name (``dashboard`` for the
    bootstrap admin token)."""
    p = session_principal(request, session)
    if p is None:
        raise AuthRequired()
    return p.name


def require_admin_scope(request: Request, session: Session) -> str:
    """The actor of a decision only the admin scope may take (breakers, thresholds,
    allowlist); a review token gets 403."""
    p = session_principal(request, session)
    if p is None:
        raise AuthRequired()
    if not p.allows("admin"):
        raise Forbidden(f"token {p.name!r} has the {p.scope} scope; this action needs admin")
    return p.name


def auth_refusal(request: Request) -> Response:
    if (
        request.method in ("GET", "HEAD")
        and not wants_json(request)
        and not request.url.path.startswith("/api/")
    ):
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        query = "" if target == "/" else "?" + urlencode({"next": target})
        return RedirectResponse("/login" + query, status_code=303)
    return JSONResponse(
        {"error": "unauthorized", "detail": "sign in to the dashboard first"},
        status_code=401,
        headers={"Cache-Control": "no-store"},
    )


class Form:
    """A parsed ``application/x-www-form-urlencoded`` body."""

    def __init__(self, data: dict[str, list[str]]) -> None:
        self.data = data

    def get(self, name: str, default: str = "") -> str:
        values = self.data.get(name)
        return values[0].strip() if values else default

    def getlist(self, name: str) -> list[str]:
        return [v.strip() for v in self.data.get(name, []) if v.strip()]


class FormTooLarge(Exception):
    pass


async def read_form(request: Request) -> Form:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > FORM_LIMIT:
        raise FormTooLarge()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise FormTooLarge()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        return Form({})
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Form({})
    return Form(parse_qs(text, keep_blank_values=True, max_num_fields=5000))


def check_csrf(request: Request, session: Session, form: Form) -> None:
    presented = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not tokens_equal(session.csrf, presented):
        raise CsrfFailed()


Handler = Callable[[Request, Session], Awaitable[Response]]
ActionHandler = Callable[[Request, Session, Form], Awaitable[Response]]


def page(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A GET page: needs a session."""

    async def endpoint(request: Request) -> Response:
        return await fn(request, current_session(request))

    endpoint.__name__ = fn.__name__
    return endpoint


def action(fn: ActionHandler) -> Callable[[Request], Awaitable[Response]]:
    """A state-changing POST: needs a session (else 401) and its CSRF token (else 403)."""

    async def endpoint(request: Request) -> Response:
        session = current_session(request)
        form = await read_form(request)
        check_csrf(request, session, form)
        return await fn(request, session, form)

    endpoint.__name__ = fn.__name__
    return endpoint


def safe_next(value: str | None, default: str) -> str:
    """A same-site path to go back to after an action, never another site."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 32 for c in value)
    ):
        return default
    return value


def done(
    request: Request,
    session: Session,
    *,
    kind: str,
    message: str,
    to: str,
    status: int = 200,
    body: dict[str, Any] | None = None,
) -> Response:
    """The answer to an action: JSON for scripts, else a flash message and a redirect."""
    if wants_json(request):
        payload = body if body is not None else {"status": kind, "message": message}
        return JSONResponse(payload, status_code=status)
    session.flash(kind, message)
    return RedirectResponse(to, status_code=303)


def failed(request: Request, session: Session, e: StemeError, to: str) -> Response:
    message = e.detail
    return done(
        request,
        session,
        kind="error",
        message=message,
        to=to,
        status=e.status,
        body={"status": "error", "type": e.type, "detail": e.detail, **e.extra()},
    )


class Renderer:
    def __init__(self) -> None:
        self.env = make_env()

    def page(
        self,
        request: Request,
        template: str,
        status_code: int = 200,
        *,
        fragment: bool = False,
        **context: Any,
    ) -> HTMLResponse:
        """Render a template; a ``fragment`` (part of a page, fetched by the page's script)
        leaves the session's messages for the next whole page."""
        session: Session | None = getattr(request.state, "session", None)
        ctx = {
            "request": request,
            "session": session,
            "csrf_token": session.csrf if session else "",
            "flashes": session.pop_flashes() if session and not fragment else [],
            "path": request.url.path,
            "active": "",
            "nav_pending": None,
            **context,
        }
        html = self.env.get_template(template).render(ctx)
        return HTMLResponse(html, status_code=status_code)


def renderer(request: Request) -> Renderer:
    r: Renderer = request.app.state.renderer
    return r
