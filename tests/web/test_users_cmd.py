"""``ykt users add|list|disable|token``."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy.orm import Session

from gateway.admin import auth
from gateway.cli.main import cli

SECRET = "a long enough secret"


def _run(db_url, *args, input=None):
    return CliRunner().invoke(cli, ["--db", db_url, "--config", "config", *args], input=input)


def test_add_list_disable(db_url, engine):
    r = _run(db_url, "users", "add", "li", "--role", "finance", "--scope", "500236", "--password-stdin",
             input=SECRET + "\n")
    assert r.exit_code == 0, r.output
    assert _run(db_url, "users", "add", "li", "--role", "finance", "--scope", "500236", "--password-stdin",
                input=SECRET + "\n").exit_code == 1
    bad = _run(db_url, "users", "add", "wang", "--role", "unit", "--scope", "500236", "--password-stdin",
               input=SECRET + "\n")
    assert bad.exit_code == 1 and "scope" in bad.output
    r = _run(db_url, "--json", "users", "list")
    assert json.loads(r.output) == [{"username": "li", "name": "li", "role": "finance", "scope": "500236",
                                     "disabled": False, "created_at": json.loads(r.output)[0]["created_at"]}]
    token = _run(db_url, "users", "token", "li", "--days", "1").output.strip()
    with Session(engine) as s:
        assert auth.authenticate(s, "li", SECRET) is not None
        import datetime as dt
        assert auth.resolve(s, token, now=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), kind=auth.API)
    assert _run(db_url, "users", "disable", "li").exit_code == 0
    with Session(engine) as s:
        assert auth.authenticate(s, "li", SECRET) is None
        assert auth.resolve(s, token, now=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), kind=auth.API) is None
    assert "DISABLED" in _run(db_url, "users", "list").output
    assert _run(db_url, "users", "disable", "nobody").exit_code == 1
