"""``ykt users …``: people who may use the web console and the API, each with one role and scope."""

from __future__ import annotations

import datetime as dt
import sys
from contextlib import contextmanager

import click


@contextmanager
def _session(ctx):
    from sqlalchemy.orm import Session

    from gateway.db import make_engine

    engine = make_engine(ctx.db_url)
    try:
        with Session(engine) as s, s.begin():
            yield s
    finally:
        engine.dispose()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _audit(s, *, action: str, username: str, detail: dict) -> None:
    from gateway import audit

    audit.append(s, actor="cli", action=action, subject=f"user:{username}", detail=detail, now=_now())


@click.group("users")
def group() -> None:
    """Add, list and disable console/API users 用户 (roles: finance, department, unit, bank, auditor).

    \b
    Scopes: finance -> county code; department -> department code; unit -> unit code;
    bank -> bank id; auditor -> county code or "*" for all counties.
    """


@group.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["finance", "department", "unit", "bank", "auditor"]))
@click.option("--scope", required=True, help="County, department, unit or bank id (auditor: county or '*').")
@click.option("--name", "display_name", help="Display name.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (else prompt).")
@click.pass_obj
def add_cmd(ctx, username, role, scope, display_name, password_stdin):
    """Create a user; the password is stored as a bcrypt hash only."""
    from gateway.admin import auth

    if password_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = click.prompt("Password 密码", hide_input=True, confirmation_prompt=True)
    cfg = ctx.config()
    with _session(ctx) as s:
        user = auth.add_user(s, cfg, username=username, secret=secret, role=role, scope=scope, now=_now(),
                             display_name=display_name)
        _audit(s, action="user.created", username=username, detail={"role": role, "scope": scope})
        out = {"username": user.username, "role": role, "scope": scope}
    ctx.emit(f"added {username} ({role}, {scope})", out)


@group.command("list")
@click.pass_obj
def list_cmd(ctx):
    """Every user with role, scope and whether disabled."""
    from gateway.admin import auth

    with _session(ctx) as s:
        rows = [{"username": u.username, "name": u.display_name, "role": u.role, "scope": u.scope,
                 "disabled": u.disabled, "created_at": u.created_at.isoformat(timespec="seconds")}
                for u in auth.list_users(s)]
    human = "\n".join(f"{r['username']:<20} {r['role']:<11} {r['scope']:<12} {'DISABLED' if r['disabled'] else ''}"
                      for r in rows) or "(no users)"
    ctx.emit(human, rows)


@group.command("disable")
@click.argument("username")
@click.pass_obj
def disable_cmd(ctx, username):
    """Disable a user and revoke their sessions and API tokens at once."""
    from gateway.admin import auth

    with _session(ctx) as s:
        auth.disable_user(s, username)
        _audit(s, action="user.disabled", username=username, detail={})
    ctx.emit(f"disabled {username}", {"username": username, "disabled": True})


@group.command("token")
@click.argument("username")
@click.option("--days", type=click.IntRange(1, 365), default=30, show_default=True, help="Valid for this many days.")
@click.pass_obj
def token_cmd(ctx, username, days):
    """Issue an API bearer token for a machine client (printed once; only its hash is kept)."""
    from gateway.admin import auth

    with _session(ctx) as s:
        token = auth.issue_token(s, username, now=_now(), ttl=dt.timedelta(days=days))
        _audit(s, action="token.issued", username=username, detail={"days": days})
    ctx.emit(token, {"username": username, "token": token, "days": days})
