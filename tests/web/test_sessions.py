"""Authentication: session expiry, logout, CSRF refusal, cookie flags, disabled users, login throttling."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))
from webhelp import PASSWORD  # noqa: E402

from gateway.admin import auth  # noqa: E402
from gateway.config import load  # noqa: E402


def _csrf(html: str) -> str:
    return html.split('name="csrf" value="')[1].split('"')[0]


def test_console_session_expires(site):
    c = site.login("fin_fj")
    assert c.get("/console/batches").status == 200
    site.clock.advance(hours=7, minutes=59)
    assert c.get("/console/batches").status == 200
    site.clock.advance(minutes=1)
    r = c.get("/console/batches")
    assert r.status == 303 and r.header("Location") == "/console/login?next=/console/batches"


def test_api_token_expires(site):
    c = site.token("dept_fj")
    assert c.get("/api/v1/batches").status == 200
    site.clock.advance(hours=8)
    assert c.get("/api/v1/batches").status == 401


def test_session_cookie_is_httponly_and_samesite_strict(site):
    c = site.client()
    login_page = c.get("/console/login")
    assert all("HttpOnly" in v and "SameSite=Strict" in v for v in login_page.all("Set-Cookie"))
    r = c.post("/console/login", {"username": "fin_fj", "password": PASSWORD, "csrf": c.cookies["ykt_login"]})
    session_cookie = [v for v in r.all("Set-Cookie") if v.startswith("ykt_session=")]
    assert len(session_cookie) == 1
    assert "HttpOnly" in session_cookie[0] and "SameSite=Strict" in session_cookie[0]
    assert "Max-Age=28800" in session_cookie[0]
    assert r.header("Content-Security-Policy").startswith("default-src 'none'")


def test_login_form_refuses_a_post_without_its_csrf_token(site):
    c = site.client()
    r = c.post("/console/login", {"username": "fin_fj", "password": PASSWORD, "csrf": "guess"})
    assert r.status == 403 and "ykt_session" not in c.cookies
    c.get("/console/login")
    r = c.post("/console/login", {"username": "fin_fj", "password": PASSWORD, "csrf": "not-the-cookie"})
    assert r.status == 403 and "ykt_session" not in c.cookies


def test_wrong_password_is_refused_and_audited(site):
    c = site.client()
    c.get("/console/login")
    r = c.post("/console/login", {"username": "fin_fj", "password": "wrong password", "csrf": c.cookies["ykt_login"]})
    assert r.status == 401 and "用户名或密码错误" in r.text and "ykt_session" not in c.cookies
    assert site.client().post_json("/api/v1/login", {"username": "nobody", "password": PASSWORD}).status == 401
    failed = [a for a in site.audit_log if a["action"] == "session.failed"]
    assert [a["subject"] for a in failed] == ["user:fin_fj", "user:nobody"]
    assert all(PASSWORD not in str(a) and "wrong password" not in str(a) for a in site.audit_log)


def test_logout_needs_csrf_and_revokes_the_session(site):
    c = site.login("fin_fj")
    home = c.get("/console/")
    token = c.cookies["ykt_session"]
    assert c.post("/console/logout", {}).status == 403
    assert c.post("/console/logout", {"csrf": "forged"}).status == 403
    assert c.get("/console/").status == 200  # still signed in
    r = c.post("/console/logout", {"csrf": _csrf(home.text)})
    assert r.status == 303 and "ykt_session" not in c.cookies
    c.cookies["ykt_session"] = token  # replaying the old cookie
    assert c.get("/console/").status == 303


def test_disabling_a_user_revokes_their_sessions_and_tokens(site, engine):
    c, t = site.login("bank_icbc"), site.token("bank_icbc")
    with Session(engine) as s, s.begin():
        auth.disable_user(s, "bank_icbc")
    assert c.get("/console/banks").status == 303
    assert t.get("/api/v1/banks").status == 401
    assert site.client().post_json("/api/v1/login", {"username": "bank_icbc", "password": PASSWORD}).status == 401


def test_login_attempts_are_throttled_per_client(site):
    c = site.client()
    for _ in range(10):
        assert c.post_json("/api/v1/login", {"username": "fin_fj", "password": "wrong guess"}).status == 401
    assert c.post_json("/api/v1/login", {"username": "fin_fj", "password": PASSWORD}).status == 429
    site.clock.advance(seconds=61)
    assert c.post_json("/api/v1/login", {"username": "fin_fj", "password": PASSWORD}).status == 200


def test_login_redirects_only_inside_the_console(site):
    c = site.client()
    c.get("/console/login")
    r = c.post("/console/login", {"username": "fin_fj", "password": PASSWORD, "csrf": c.cookies["ykt_login"],
                                  "next": "https://evil.example/"})
    assert r.header("Location") == "/console/"


# --- the auth module without HTTP ------------------------------------------------------------------

def test_users_scopes_and_secrets(engine):
    cfg = load("config")
    now = dt.datetime(2026, 11, 2)
    with Session(engine) as s, s.begin():
        with pytest.raises(auth.AuthError, match="at least"):
            auth.add_user(s, cfg, username="a", secret="short", role="finance", scope="500236", now=now, rounds=4)
        with pytest.raises(auth.AuthError, match="unknown role"):
            auth.add_user(s, cfg, username="a", secret=PASSWORD, role="admin", scope="500236", now=now, rounds=4)
        for role, scope in (("finance", "FJ-MZ"), ("department", "500236"), ("unit", "icbc-cq"), ("bank", "500236"),
                            ("auditor", "FJ-MZ"), ("finance", "*")):
            with pytest.raises(auth.AuthError, match="scope"):
                auth.add_user(s, cfg, username="a", secret=PASSWORD, role=role, scope=scope, now=now, rounds=4)
        u = auth.add_user(s, cfg, username="li", secret=PASSWORD, role="auditor", scope="*", now=now, rounds=4)
        assert PASSWORD not in u.secret_hash and u.secret_hash.startswith("$2b$04$")
        with pytest.raises(auth.AuthError, match="exists"):
            auth.add_user(s, cfg, username="li", secret=PASSWORD, role="auditor", scope="*", now=now, rounds=4)
        assert auth.authenticate(s, "li", PASSWORD) is not None
        assert auth.authenticate(s, "li", PASSWORD + "x") is None
        token = auth.open_session(s, u, now=now, kind=auth.API, ttl=dt.timedelta(minutes=5))
        assert token not in str([r for r in s.execute(auth.WebSession.__table__.select())])
        assert auth.resolve(s, token, now=now, kind=auth.API).role == "auditor"
        assert auth.resolve(s, token, now=now, kind=auth.CONSOLE) is None
        assert auth.resolve(s, token, now=now + dt.timedelta(minutes=5), kind=auth.API) is None
