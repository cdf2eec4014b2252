"""The review dashboard's ASGI application factory and its sign-in routes.

``create_dashboard(database)`` builds the app around an open Database (the same one the
API app uses: the server runs both in one process and one event loop). It never starts or
closes the database; the server does.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth import admin_token, token_matches
from ..engine import Database
from ..errors import StemeError
from ..guards import LimitPolicy, RateLimiter, retry_after_header
from . import actions, views
from .sessions import BOOTSTRAP_REF, LOGIN_COOKIE, SESSION_COOKIE, SessionStore
from .web import (
    ACTOR,
    STATIC,
    AuthRequired,
    CsrfFailed,
    FormTooLarge,
    Renderer,
    auth_refusal,
    check_csrf,
    clear_cookie,
    client_address,
    current_session,
    db_of,
    read_form,
    renderer,
    safe_next,
    sessions_of,
    set_cookie,
    wants_json,
)

log = logging.getLogger("stemedb.dashboard")

#: Failed sign-in attempts per client address: 5 at once, then one every 12 seconds.
LOGIN_RATE_PER_SECOND = 5 / 60
LOGIN_BURST = 5

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def refreshed_cookie(scope: Scope, value: str) -> tuple[bytes, bytes]:
    """The Set-Cookie header of a re-issued session cookie (the attributes of sign-in)."""
    response = Response()
    set_cookie(response, Request(scope), SESSION_COOKIE, value, max_age=None)
    return next(h for h in response.raw_headers if h[0] == b"set-cookie")


def session_key(secret: str, admin_token: str) -> bytes:
    """The key of the shared session cookies: ``[admin] session_secret``, else derived
    from the admin token, so nodes that share the token share sessions."""
    if secret:
        return secret.encode("utf-8")
    return hmac.new(admin_token.encode("utf-8"), b"stemedb dashboard sessions",
                    hashlib.sha256).digest()


class SecurityHeadersMiddleware:
    """Adds the security headers to every answer, ``Cache-Control: no-store`` to
    everything but the static files (pages show admin data), and a shared session's
    re-issued cookie when it is due (``Session.refresh``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"server"]
                headers += SECURITY_HEADERS
                if not static and not any(h[0] == b"cache-control" for h in headers):
                    headers.append((b"cache-control", b"no-store"))
                session = scope.get("state", {}).get("session")
                if session is not None and session.refresh and not any(
                        h[0] == b"set-cookie" for h in headers):
                    headers.append(refreshed_cookie(scope, session.refresh))
                    session.refresh = None
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- sign-in -------------------------------------------------------------------------------


def _login_page(
    request: Request,
    *,
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    next_path: str | None = None,
) -> Response:
    store = sessions_of(request)
    token = store.login_token()
    nxt = safe_next(next_path or request.query_params.get("next"), "/")
    response = renderer(request).page(
        request, "login.html", status_code=status, error=error, login_token=token, next=nxt
    )
    if headers:
        response.headers.update(headers)
    set_cookie(response, request, LOGIN_COOKIE, token, max_age=3600)
    return response


async def login_form(request: Request) -> Response:
    if sessions_of(request).get(request.cookies.get(SESSION_COOKIE)) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next"), "/"), 303)
    return _login_page(request)


async def login(request: Request) -> Response:
    store = sessions_of(request)
    address = client_address(request)
    limiter: RateLimiter = request.app.state.login_limiter
    # Failed attempts drain the address's bucket; while it is empty, nothing is checked.
    waiting = limiter.retry_after(address)
    if waiting > 0:
        wait = retry_after_header(waiting)
        log.warning("dashboard sign-in rate limited", extra={"client": address})
        return _login_page(
            request,
            status=429,
            error=f"Too many sign-in attempts. Try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    form = await read_form(request)
    nxt = form.get("next")
    if not store.login_token_valid(request.cookies.get(LOGIN_COOKIE), form.get("login_token")):
        limiter.check(address)
        return _login_page(
            request,
            status=403,
            next_path=nxt,
            error="The sign-in form expired. Please enter the token again.",
        )
    presented = form.get("token")
    ref = BOOTSTRAP_REF
    name = ACTOR
    if not token_matches(request.app.state.admin_token, presented):
        try:
            principal = db_of(request).tokens.check(presented) if presented else None
        except StemeError:
            principal = None
        if principal is None:
            limiter.check(address)
            log.warning("dashboard sign-in failed", extra={"client": address})
            return _login_page(request, status=401, next_path=nxt,
                               error="That is not the admin token or a live review token.")
        if not principal.allows("review"):
            log.warning("dashboard sign-in refused: read-only token",
                        extra={"client": address, "token": principal.name})
            return _login_page(request, status=403, next_path=nxt,
                               error=f"Token {principal.name} can only read; signing in "
                                     "needs a review or admin token.")
        ref, name = db_of(request).tokens.ref_of(presented), principal.name
    session = store.create(address, ref)
    log.info("dashboard sign-in", extra={"client": address, "token": name})
    response = RedirectResponse(safe_next(nxt, "/"), status_code=303)
    set_cookie(response, request, SESSION_COOKIE, store.cookie_value(session), max_age=None)
    clear_cookie(response, request, LOGIN_COOKIE)
    return response


async def logout(request: Request) -> Response:
    session = current_session(request)
    form = await read_form(request)
    check_csrf(request, session, form)
    sessions_of(request).destroy(session)
    response = RedirectResponse("/login", status_code=303)
    clear_cookie(response, request, SESSION_COOKIE)
    return response


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


# -- errors --------------------------------------------------------------------------------


async def _auth_required(request: Request, exc: Exception) -> Response:
    return auth_refusal(request)


async def _csrf_failed(request: Request, exc: Exception) -> Response:
    log.warning(
        "dashboard request refused: missing or wrong CSRF token", extra={"path": request.url.path}
    )
    if wants_json(request):
        return JSONResponse({"error": "csrf", "detail": "missing or wrong CSRF token"}, 403)
    return renderer(request).page(
        request,
        "error.html",
        status_code=403,
        title="Request refused",
        message="The form was missing its security token, or it was sent from another "
        "page. Go back, reload the page and try again.",
        back="/",
    )


async def _steme_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StemeError)
    if wants_json(request):
        return JSONResponse(
            {"error": exc.type, "detail": exc.detail, **exc.extra()},
            exc.status if exc.status >= 400 else 500,
        )
    status = exc.status if 400 <= exc.status < 600 else 500
    return renderer(request).page(
        request, "error.html", status_code=status, title=exc.title, message=exc.detail, back="/"
    )


async def _too_large(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "too_large", "detail": "the form is too large"}, 413)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if wants_json(request) or exc.status_code not in (404, 405):
        return JSONResponse({"error": exc.detail}, exc.status_code)
    title = "Page not found" if exc.status_code == 404 else "Method not allowed"
    return renderer(request).page(
        request,
        "error.html",
        status_code=exc.status_code,
        title=title,
        message="There is nothing here.",
        back="/",
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("dashboard request failed", exc_info=exc, extra={"path": request.url.path})
    if wants_json(request):
        return JSONResponse({"error": "internal", "detail": "internal error"}, 500)
    try:
        return renderer(request).page(
            request,
            "error.html",
            status_code=500,
            title="Something went wrong",
            message="The dashboard could not answer. The error is in the server log.",
            back="/",
        )
    except Exception:  # the template itself failed
        return Response("internal error", status_code=500, media_type="text/plain")


def create_dashboard(
    database: Database,
    *,
    sessions: SessionStore | None = None,
    login_rate: float = LOGIN_RATE_PER_SECOND,
    login_burst: int = LOGIN_BURST,
    token: str | None = None,
) -> Starlette:
    """The dashboard app around an open Database (never closed by the app)."""
    routes: list[Any] = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/", views.overview, methods=["GET"]),
        Route("/overview/live", views.overview_live, methods=["GET"]),
        Route("/api/overview", views.overview_json, methods=["GET"]),
        Route("/quarantine", views.quarantine, methods=["GET"]),
        Route("/quarantine/batch", actions.batch, methods=["POST"]),
        Route("/quarantine/{qid}", views.quarantine_item, methods=["GET"]),
        Route("/quarantine/{qid}/approve", actions.approve, methods=["POST"]),
        Route("/quarantine/{qid}/reject", actions.reject, methods=["POST"]),
        Route("/quarantine/{qid}/notes", actions.note, methods=["POST"]),
        Route("/agents/{agent_id}", views.agent_page, methods=["GET"]),
        Route("/breakers", views.breakers, methods=["GET"]),
        Route("/breakers/open", actions.open_breaker, methods=["POST"]),
        Route("/breakers/{agent_id}/reset", actions.reset_breaker, methods=["POST"]),
        Route("/defense", views.defense, methods=["GET"]),
        Route("/defense/thresholds", actions.set_thresholds, methods=["POST"]),
        Route("/defense/allowlist", actions.allow, methods=["POST"]),
        Route("/defense/allowlist/{agent_id}/remove", actions.disallow, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            AuthRequired: _auth_required,
            CsrfFailed: _csrf_failed,
            FormTooLarge: _too_large,
            StemeError: _steme_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.state.db = database
    app.state.admin_token = token or admin_token(database.settings)
    app.state.sessions = sessions if sessions is not None else SessionStore(
        secret=session_key(database.settings.admin.session_secret, app.state.admin_token),
        shared=True)
    app.state.renderer = Renderer()
    app.state.login_limiter = RateLimiter(
        LimitPolicy(rate=login_rate, burst=login_burst, name="dashboard-login"), max_keys=10_000
    )
    app.add_middleware(SecurityHeadersMiddleware)
    return app
