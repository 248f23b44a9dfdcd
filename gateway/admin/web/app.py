"""The web console, the JSON API and the public pages, as one ``twisted.web`` resource.

``make_resource(engine=…, config=…, vault=…, clock=…, calendar=…)`` is what ``ykt serve`` mounts::

    /health                          liveness, no login
    /public/  /public/policies(.csv) the policy list 政策清单; /public/query 自助查询 (no login, rate-limited)
    /console/login  /console/logout  login form (session cookie HttpOnly, SameSite=Strict; CSRF on every POST)
    /console/<endpoint>              server-rendered pages, one per entry of :data:`ENDPOINTS`
    /api/v1/login                    POST {"username", "password"} -> {"token", "expires_at"}
    /api/v1/<endpoint>               the same data as JSON (``Authorization: Bearer <token>``)

Every console page and API endpoint is an :class:`Endpoint`: a method and path, the roles that may
call it and a view function from :mod:`gateway.admin.web.views` that already cuts the data to the
caller's scope. Answers: anonymous -> 401 (API) or a redirect to the login form (console); a role not
listed -> 403; an object outside the caller's scope -> 404, exactly as for one that does not exist;
asking to act for another unit -> 403; bad input -> 400 ``{"error", "field", "message_zh",
"message_en"}``, and nothing of the request is kept (one transaction, rolled back).

The one-card account endpoints [Art. 10-14] are POSTs of the API only (a bearer token is no cookie, so
no CSRF token is needed; the console's forms all carry one): ``POST /beneficiaries`` registers,
``POST /beneficiaries/lookup`` finds by ID number (in the body, never in a URL), ``POST
/beneficiaries/{id}/accounts`` records a change, ``POST /accounts/{id}/approve`` and
``/confirm`` approve and confirm it, ``POST /beneficiaries/{id}/proxies`` records a proxy 代领.

The dispatcher (:meth:`ConsoleApp.dispatch`) is a plain function ``WebRequest -> WebResponse``
with synchronous SQLAlchemy; :class:`SiteResource` runs it in the reactor's thread pool so a slow
query or a bcrypt check never blocks the reactor.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET

from gateway.admin import auth
from gateway.admin.auth import API, AUDITOR, BANK, CONSOLE, DEPARTMENT, FINANCE, UNIT, Principal
from gateway.admin.web import views
from gateway.admin.web.charts import stacked_bars
from gateway.admin.web.http import MAX_BODY, WebRequest, WebResponse
from gateway.admin.web.ratelimit import RateLimiter

log = logging.getLogger("ykt.web")
HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "ykt_session"
LOGIN_COOKIE = "ykt_login"  # double-submit CSRF token for the login form (no session yet)

EVERYONE = frozenset({FINANCE, DEPARTMENT, UNIT, BANK, AUDITOR})
OVERSIGHT = frozenset({FINANCE, AUDITOR})


@dataclass(frozen=True)
class Endpoint:
    """One console page and its API twin: ``/console<path>`` and ``/api/v1<path>``; a POST is an API
    call only (its view reads the JSON body from ``ctx.body``) and answers ``status`` on success."""

    name: str
    path: str  # "{id}" stands for a numeric id
    roles: frozenset
    view: Callable
    template: str
    title: str
    nav: bool = True
    method: str = "GET"
    status: int = 200

    @property
    def console(self) -> bool:
        return self.method == "GET"

    @property
    def pattern(self) -> re.Pattern:
        return re.compile("^" + self.path.replace("{id}", r"(?P<id>[0-9]{1,12})") + "$")


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("me", "/me", EVERYONE, views.me, "home.html", "我的账户 My account", nav=False),
    Endpoint("banks", "/banks", OVERSIGHT | {BANK}, views.banks, "banks.html", "代发银行 Banks"),
    Endpoint("files", "/files", OVERSIGHT | {BANK}, views.files, "files.html", "文件 Files"),
    Endpoint("batches", "/batches", OVERSIGHT | {DEPARTMENT}, views.batches, "batches.html", "批次 Batches"),
    Endpoint("batch", "/batches/{id}", OVERSIGHT | {DEPARTMENT}, views.batch, "batch.html", "批次 Batch", nav=False),
    Endpoint("findings", "/batches/{id}/findings", OVERSIGHT | {DEPARTMENT}, views.findings, "findings.html",
             "校验结果 Findings", nav=False),
    Endpoint("items", "/items", OVERSIGHT | {DEPARTMENT, UNIT}, views.items, "items.html", "发放明细 Items"),
    Endpoint("item", "/items/{id}", OVERSIGHT | {DEPARTMENT, UNIT}, views.item, "item.html", "发放明细 Item",
             nav=False),
    Endpoint("exceptions", "/exceptions", OVERSIGHT | {BANK}, views.exceptions, "exceptions.html",
             "异常队列 Exceptions"),
    Endpoint("corrections", "/corrections", OVERSIGHT | {DEPARTMENT, UNIT}, views.corrections, "corrections.html",
             "更正队列 Corrections"),
    Endpoint("compliance", "/compliance", OVERSIGHT | {DEPARTMENT, BANK}, views.compliance, "compliance.html",
             "时限合规 Compliance"),
    Endpoint("disclosure", "/disclosure", OVERSIGHT | {DEPARTMENT, UNIT}, views.disclosure, "disclosure.html",
             "公开预览 Disclosure"),
    # one-card accounts [Art. 10-14]: the rules and the audit entries are gateway.admin.accounts'
    Endpoint("beneficiary", "/beneficiaries/{id}", OVERSIGHT | {DEPARTMENT, UNIT}, views.beneficiary,
             "beneficiary.html", "补贴对象 Beneficiary", nav=False),
    Endpoint("beneficiary_lookup", "/beneficiaries/lookup", OVERSIGHT | {DEPARTMENT, UNIT}, views.beneficiary_lookup,
             "", "", nav=False, method="POST"),
    Endpoint("register_account", "/beneficiaries", frozenset({UNIT}), views.register_account, "", "", nav=False,
             method="POST", status=201),
    Endpoint("change_account", "/beneficiaries/{id}/accounts", frozenset({UNIT}), views.change_account, "", "",
             nav=False, method="POST", status=201),
    Endpoint("record_proxy", "/beneficiaries/{id}/proxies", frozenset({UNIT}), views.record_proxy, "", "",
             nav=False, method="POST", status=201),
    Endpoint("approve_account", "/accounts/{id}/approve", frozenset({UNIT}), views.approve_account, "", "",
             nav=False, method="POST"),
    Endpoint("confirm_account", "/accounts/{id}/confirm", frozenset({FINANCE}), views.confirm_account, "", "",
             nav=False, method="POST"),
)

SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
]


def _bank_bars(banks: list[dict], series) -> list[tuple[str, dict[str, int]]]:
    """Rows for :func:`stacked_bars` from the compliance view's per-bank rows."""
    def count(v):
        return v["count"] if isinstance(v, dict) else int(v or 0)
    return [(b["bank"], {k: count(b.get(k)) for k, _label in series}) for b in banks]


def _now_source(clock) -> tuple[Callable[[], dt.datetime], Callable[[], float]]:
    """(now as naive UTC, seconds) from an ``IReactorTime`` or a ``now()`` callable."""
    if hasattr(clock, "seconds"):
        def now() -> dt.datetime:
            return dt.datetime.fromtimestamp(clock.seconds(), dt.timezone.utc).replace(tzinfo=None)
        return now, clock.seconds

    def now() -> dt.datetime:
        t = clock()
        if isinstance(t, (int, float)):
            return dt.datetime.fromtimestamp(t, dt.timezone.utc).replace(tzinfo=None)
        return t.astimezone(dt.timezone.utc).replace(tzinfo=None) if t.tzinfo else t

    return now, lambda: now().replace(tzinfo=dt.timezone.utc).timestamp()


class ConsoleApp:
    """Routing, authentication and rendering; no I/O but the database."""

    def __init__(self, *, engine, config, vault, clock, calendar, audit: Callable | None = None,
                 secure_cookies: bool | None = None, login_rate: tuple[int, float] = (10, 60),
                 query_limits=None, console_ttl: dt.timedelta = auth.CONSOLE_TTL) -> None:
        self.engine, self.cfg, self.vault, self.calendar = engine, config, vault, calendar
        self.now, seconds = _now_source(clock)
        if audit is None:
            from gateway.audit import append as audit
        self.audit = audit
        self.secure_cookies = secure_cookies
        self.console_ttl = console_ttl
        self.login_limiter = RateLimiter(capacity=login_rate[0], per_seconds=login_rate[1], seconds=seconds)
        from gateway.admin.disclosure import QueryLimits, SelfServiceQuery

        limits = QueryLimits.load(config.directory) if query_limits is None else query_limits
        self.query = SelfServiceQuery(config, vault, self.now, limits=limits)
        self.env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                               autoescape=select_autoescape(("html",)), trim_blocks=True, lstrip_blocks=True)
        self.env.globals.update(stacked_bars=stacked_bars, bank_bars=_bank_bars, endpoints=ENDPOINTS)
        self.css = (HERE / "static" / "style.css").read_bytes()

    # --- entry point -------------------------------------------------------------------------------
    def dispatch(self, req: WebRequest) -> WebResponse:
        try:
            resp = self._route(req)
        except Exception as e:  # noqa: BLE001 - one request's failure never takes the site down
            log.error("request failed: %s %s: %s", req.method, req.path, type(e).__name__)
            log.debug("traceback", exc_info=True)
            resp = (WebResponse.json({"error": "internal error"}, 500) if req.path.startswith("/api/")
                    else self._page("error.html", None, 500, title="出错了 Error",
                                    message="服务器内部错误 Internal error"))
        resp.headers.extend(SECURITY_HEADERS)
        if not req.path.startswith("/static/"):
            resp.headers.append(("Cache-Control", "no-store"))
        return resp

    def _route(self, req: WebRequest) -> WebResponse:
        path = req.path.rstrip("/") or "/"
        if path == "/health":
            return WebResponse.text("ok")
        if path == "/static/style.css":
            return WebResponse(200, self.css, "text/css; charset=utf-8", [("Cache-Control", "max-age=3600")])
        if path == "/":
            return WebResponse.redirect("/public/")
        if path == "/public" or path.startswith("/public/"):
            return self._public(req, path[len("/public"):] or "/")
        if path == "/console" or path.startswith("/console/"):
            return self._console(req, path[len("/console"):] or "/")
        if path.startswith("/api/v1/"):
            return self._api(req, path[len("/api/v1"):])
        return self._not_found(req)

    # --- helpers -----------------------------------------------------------------------------------
    def _page(self, template: str, principal: Principal | None, status: int = 200, **data) -> WebResponse:
        html = self.env.get_template(template).render(me=principal, **data)
        return WebResponse(status, html.encode("utf-8"))

    def _not_found(self, req: WebRequest, principal: Principal | None = None) -> WebResponse:
        if req.path.startswith("/api/"):
            return WebResponse.json({"error": "not found"}, 404)
        return self._page("error.html", principal, 404, title="未找到 Not found",
                          message="没有这个页面，或不在您的权限范围内 No such page, or not within your scope")

    def _forbidden(self, req: WebRequest, principal: Principal | None, why: str = "") -> WebResponse:
        if req.path.startswith("/api/"):
            return WebResponse.json({"error": "forbidden", "why": why}, 403)
        return self._page("error.html", principal, 403, title="无权访问 Forbidden",
                          message=why or "您的角色无权访问此页面 Your role may not open this page")

    def _secure(self, req: WebRequest) -> bool:
        return req.secure if self.secure_cookies is None else self.secure_cookies

    def _audit(self, s: Session, *, actor: str, action: str, subject: str, detail: dict) -> None:
        self.audit(s, actor=actor, action=action, subject=subject, detail=detail, now=self.now())

    def _match(self, path: str, method: str | None = None) -> tuple[Endpoint, dict] | None:
        """The endpoint for ``path`` and ``method`` (any method if None) and its parameters."""
        for ep in ENDPOINTS:
            m = ep.pattern.match(path)
            if m and method in (None, ep.method):
                return ep, {k: int(v) for k, v in m.groupdict().items()}
        return None

    def _ctx(self, s: Session, principal: Principal, req: WebRequest) -> views.Ctx:
        return views.Ctx(s, principal, self.cfg, self.vault, self.now(), self.calendar, req.query, req.json_body)

    # --- public ------------------------------------------------------------------------------------
    def _public(self, req: WebRequest, path: str) -> WebResponse:
        if path == "/" and req.method == "GET":
            return self._page("public_index.html", None, title="信息公开 Public information")
        if path == "/policies" and req.method == "GET":
            return self._page("policies.html", None, title="政策清单 Policy list", policies=views.policy_list(self.cfg))
        if path == "/policies.csv" and req.method == "GET":
            from gateway.admin.disclosure import render_policy_list_csv

            return WebResponse(200, render_policy_list_csv(self.cfg), "text/csv; charset=utf-8",
                               [("Content-Disposition", 'attachment; filename="policy-list.csv"')])
        if path == "/query":
            if req.method == "GET":
                return self._page("query.html", None, title="自助查询 Self-service query", asked=False)
            if req.method == "POST":
                return self._query(req)
            return WebResponse.text("method not allowed", 405)
        return self._not_found(req)

    def _query(self, req: WebRequest) -> WebResponse:
        """:class:`gateway.admin.disclosure.SelfServiceQuery`: own payments only, masked, rate-limited
        per client address and per ID number; the same answer for an unknown ID and a wrong name."""
        from gateway.admin.disclosure import QueryRateLimited, QueryRefused

        name, id_number = req.form.get("name", ""), req.form.get("id_number", "")
        title = "自助查询 Self-service query"
        try:
            with Session(self.engine) as s:
                rows = self.query.ask(s, name=name, id_number=id_number, client_key=req.client)
        except QueryRateLimited as e:
            resp = self._page("query.html", None, 429, title=title, asked=False, error=e.plain())
            resp.headers.append(("Retry-After", str(max(1, int(e.retry_after.total_seconds() + 0.999)))))
            return resp
        except QueryRefused as e:
            return self._page("query.html", None, 400, title=title, asked=False, error=e.plain())
        return self._page("query.html", None, title=title, asked=True, rows=rows)

    # --- console -----------------------------------------------------------------------------------
    def _console_principal(self, s: Session, req: WebRequest) -> Principal | None:
        return auth.resolve(s, req.cookies.get(SESSION_COOKIE), now=self.now(), kind=CONSOLE)

    def _to_login(self, req: WebRequest) -> WebResponse:
        nxt = req.path if req.method == "GET" else "/console/"
        return WebResponse.redirect("/console/login?next=" + quote(nxt, safe="/"))

    def _console(self, req: WebRequest, path: str) -> WebResponse:
        if path == "/login":
            return self._login(req)
        with Session(self.engine) as s, s.begin():
            p = self._console_principal(s, req)
            if p is None:
                return self._to_login(req)
            if req.method == "POST":
                if not auth.csrf_ok(p, req.form.get("csrf")):
                    return self._forbidden(req, p, "表单已失效，请刷新后重试 CSRF token missing or wrong")
                if path == "/logout":
                    auth.close_session(s, req.cookies.get(SESSION_COOKIE))
                    resp = WebResponse.redirect("/console/login")
                    resp.set_cookie(SESSION_COOKIE, "", max_age=0, secure=self._secure(req))
                    return resp
                m = re.fullmatch(r"/items/([0-9]{1,12})/reveal", path)
                if m:
                    return self._reveal(req, s, p, int(m.group(1)), api=False)
                return self._not_found(req, p)
            if req.method != "GET":
                return WebResponse.text("method not allowed", 405)
            if path == "/":
                return self._page("home.html", p, title="工作台 Console", **views.me(self._ctx(s, p, req)))
            hit = self._match(path, "GET")
            if hit is None or not hit[0].console:
                return self._not_found(req, p)
            ep, params = hit
            if p.role not in ep.roles:
                return self._forbidden(req, p)
            try:
                data = ep.view(self._ctx(s, p, req), **params)
            except views.NotFound:
                return self._not_found(req, p)
            return self._page(ep.template, p, title=ep.title, **data)

    def _login(self, req: WebRequest) -> WebResponse:
        nxt = req.query.get("next") or req.form.get("next") or "/console/"
        if not re.fullmatch(r"/console(/[A-Za-z0-9_/\-?=&.]*)?", nxt):
            nxt = "/console/"
        if req.method == "GET":
            token = secrets.token_urlsafe(24)
            resp = self._page("login.html", None, title="登录 Sign in", csrf=token, next=nxt)
            resp.set_cookie(LOGIN_COOKIE, token, path="/console/login", max_age=1800, secure=self._secure(req))
            return resp
        if req.method != "POST":
            return WebResponse.text("method not allowed", 405)
        pre = req.cookies.get(LOGIN_COOKIE, "")
        if not pre or not secrets.compare_digest(pre, req.form.get("csrf", "")):
            return self._forbidden(req, None, "表单已失效，请刷新后重试 CSRF token missing or wrong")
        if not self.login_limiter.allow(req.client):
            return self._page("login.html", None, 429, title="登录 Sign in", csrf=pre, next=nxt,
                              error="尝试次数过多，请稍后再试 Too many attempts; please wait")
        username = req.form.get("username", "")
        with Session(self.engine) as s, s.begin():
            user = auth.authenticate(s, username, req.form.get("password", ""))
            if user is None:
                self._audit_login(s, username, False, req)
                return self._page("login.html", None, 401, title="登录 Sign in", csrf=pre, next=nxt,
                                  error="用户名或密码错误 Wrong username or password")
            token = auth.open_session(s, user, now=self.now(), kind=CONSOLE, ttl=self.console_ttl)
            self._audit_login(s, username, True, req)
        resp = WebResponse.redirect(nxt)
        resp.set_cookie(SESSION_COOKIE, token, max_age=int(self.console_ttl.total_seconds()), secure=self._secure(req))
        resp.set_cookie(LOGIN_COOKIE, "", path="/console/login", max_age=0, secure=self._secure(req))
        return resp

    def _audit_login(self, s: Session, username: str, ok: bool, req: WebRequest, kind: str = CONSOLE) -> None:
        subject = f"user:{username}" if re.fullmatch(r"[A-Za-z0-9_.@\-]{1,64}", username) else "user:?"
        try:
            self._audit(s, actor=subject, action="session.opened" if ok else "session.failed", subject=subject,
                        detail={"client": req.client, "kind": kind})
        except ValueError:  # e.g. a "username" that looks like an ID number: log without it
            self._audit(s, actor="user:?", action="session.opened" if ok else "session.failed", subject="user:?",
                        detail={"kind": kind})

    def _reveal(self, req: WebRequest, s: Session, p: Principal, item_id: int, *, api: bool) -> WebResponse:
        """Personal data in full: finance of the item's county only, audit entry first, same transaction."""
        if p.role != FINANCE:
            return self._forbidden(req, p, "仅本区县财政部门可查看完整个人信息 only the county's finance bureau")
        ctx = self._ctx(s, p, req)
        try:
            views.item_reveal_subject(ctx, item_id)
        except views.NotFound:
            return self._not_found(req, p)
        except views.Forbidden as e:
            return self._forbidden(req, p, f"仅本区县财政部门可查看完整个人信息 {e}")
        self._audit(s, actor=f"user:{p.username}", action="personal_data.viewed", subject=f"item:{item_id}",
                    detail={"role": p.role, "scope": p.scope, "via": "api" if api else "console"})
        data = views.item_reveal(ctx, item_id)
        if api:
            return WebResponse.json(data)
        return self._page("item.html", p, title="发放明细 Item", **data)

    # --- API ---------------------------------------------------------------------------------------
    def _api(self, req: WebRequest, path: str) -> WebResponse:
        if path == "/login":
            return self._api_login(req)
        try:
            with Session(self.engine) as s, s.begin():
                return self._api_call(req, s, path)
        except _Refused as e:  # raised inside the transaction, so nothing of the request is kept
            return e.response

    def _api_call(self, req: WebRequest, s: Session, path: str) -> WebResponse:
        header = req.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        p = auth.resolve(s, token, now=self.now(), kind=API)
        if p is None:
            resp = WebResponse.json({"error": "authentication required"}, 401)
            resp.headers.append(("WWW-Authenticate", 'Bearer realm="ykt"'))
            return resp
        m = re.fullmatch(r"/items/([0-9]{1,12})/reveal", path)
        if m and req.method == "POST":
            return self._reveal(req, s, p, int(m.group(1)), api=True)
        if path == "/audit/export" and req.method == "GET":
            if p.role != AUDITOR:
                return self._forbidden(req, p)
            from gateway import audit

            buf = io.StringIO()
            n = audit.export(s, buf, "jsonl")
            self._audit(s, actor=f"user:{p.username}", action="audit.exported", subject="audit:log",
                        detail={"entries": n})
            return WebResponse(200, buf.getvalue().encode("utf-8"), "application/x-ndjson; charset=utf-8")
        hit = self._match(path, req.method)
        if hit is None:
            if self._match(path) is not None:
                return WebResponse.json({"error": "method not allowed"}, 405)
            return self._not_found(req, p)
        ep, params = hit
        if p.role not in ep.roles:
            return self._forbidden(req, p)
        try:
            return WebResponse.json(ep.view(self._ctx(s, p, req), **params), ep.status)
        except views.NotFound:
            raise _Refused(self._not_found(req, p)) from None
        except views.Forbidden as e:
            raise _Refused(self._forbidden(req, p, str(e))) from None
        except views.BadInput as e:
            raise _Refused(WebResponse.json(e.as_dict(), 400)) from None

    def _api_login(self, req: WebRequest) -> WebResponse:
        if req.method != "POST":
            return WebResponse.json({"error": "method not allowed"}, 405)
        if not self.login_limiter.allow(req.client):
            return WebResponse.json({"error": "too many attempts"}, 429)
        body = req.json_body or {}
        username, secret = str(body.get("username", "")), str(body.get("password", ""))
        with Session(self.engine) as s, s.begin():
            user = auth.authenticate(s, username, secret)
            self._audit_login(s, username, user is not None, req, kind=API)
            if user is None:
                return WebResponse.json({"error": "wrong username or password"}, 401)
            ttl = dt.timedelta(hours=8)
            token = auth.open_session(s, user, now=self.now(), kind=API, ttl=ttl)
            role, scope = user.role, user.scope
        return WebResponse.json({"token": token, "expires_at": (self.now() + ttl).isoformat(timespec="seconds") + "Z",
                                 "role": role, "scope": scope})


class _Refused(Exception):
    """An API answer that must roll the request's transaction back."""

    def __init__(self, response: WebResponse) -> None:
        super().__init__(response.status)
        self.response = response


class SiteResource(Resource):
    """Adapts :class:`ConsoleApp` to ``twisted.web``; the app runs in the reactor's thread pool."""

    isLeaf = True

    def __init__(self, app: ConsoleApp, reactor) -> None:
        super().__init__()
        self.app, self.reactor = app, reactor

    def render(self, request):
        from twisted.internet.threads import deferToThreadPool

        body = request.content.read(MAX_BODY + 1) if request.content is not None else b""
        if len(body) > MAX_BODY:
            request.setResponseCode(413)
            return b"request too large"
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in
                   ((k, vs[-1]) for k, vs in request.requestHeaders.getAllRawHeaders())}
        addr = request.getClientAddress()
        req = WebRequest.build(request.method.decode("ascii", "replace"), request.uri.decode("utf-8", "replace"),
                               headers, body, getattr(addr, "host", ""), request.isSecure())
        finished = []
        request.notifyFinish().addBoth(finished.append)
        d = deferToThreadPool(self.reactor, self.reactor.getThreadPool(), self.app.dispatch, req)

        def write(resp: WebResponse) -> None:
            if finished:
                return
            request.setResponseCode(resp.status)
            request.setHeader(b"Content-Type", resp.content_type.encode("ascii"))
            for name, value in resp.headers:
                request.responseHeaders.addRawHeader(name.encode("ascii"), value.encode("utf-8"))
            request.write(resp.body)
            request.finish()

        def fail(f) -> None:
            log.error("web dispatch failed: %s", f.type.__name__)
            if not finished:
                request.setResponseCode(500)
                request.finish()

        d.addCallback(write).addErrback(fail)
        return NOT_DONE_YET


def make_resource(*, engine, config, vault, clock, calendar, reactor=None, **options) -> IResource:
    """The site root: ``/console/…``, ``/api/v1/…``, ``/public/…``, ``/health``.

    ``clock`` is an ``IReactorTime`` or a ``now()`` callable; ``reactor`` (default: the running
    one) supplies the thread pool the handlers run in. ``options`` go to :class:`ConsoleApp`
    (``audit``, ``secure_cookies``, ``login_rate``, ``query_limits``, ``console_ttl``).
    """
    if reactor is None:
        from twisted.internet import reactor  # noqa: F811 - only when the caller did not pass one
    app = ConsoleApp(engine=engine, config=config, vault=vault, clock=clock, calendar=calendar, **options)
    return SiteResource(app, reactor)
