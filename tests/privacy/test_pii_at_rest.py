"""Personal data is encrypted at rest and never logged [Art. 30, 32-35]: after a realistic roster was
registered and submitted, neither a database dump nor the logs hold a plaintext name, ID number or
account number."""

import io
import logging
import os
import sqlite3
import subprocess

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gateway import logs
from tests.support.tools import require_pg_dump
from pii_roster import key_line, load_roster, vault  # noqa: F401 - fixtures

TEXT_TYPES = ("text", "character varying", "character", "bytea", "json", "jsonb")


def _needles(body):
    """Every plaintext value, as text and as the bytes it would have in a blob (UTF-8 and GBK)."""
    out = set()
    for name, idn, account, *_ in body:
        for v in (name, idn, account):
            out.add(v)
            out.add(v.encode("utf-8").hex().upper())
            out.add(v.encode("gbk").hex().upper())
    return out


def _every_text_and_binary_value(engine) -> str:
    """The pg_dump-like view: every text and binary column of every table, rendered as text (bytes as hex)."""
    parts = []
    with engine.connect() as c:
        insp = sa.inspect(c)
        for t in insp.get_table_names():
            cols = [col["name"] for col in insp.get_columns(t)]
            for row in c.execute(sa.text(f'SELECT {", ".join(chr(34) + x + chr(34) for x in cols)} FROM "{t}"')):
                for v in row:
                    if isinstance(v, (bytes, memoryview)):
                        parts.append(bytes(v).hex().upper())
                        parts.append(bytes(v).decode("utf-8", "replace"))
                    elif v is not None:
                        parts.append(str(v))
    return "\n".join(parts)


def _native_dump(engine) -> str | None:
    url = make_url(engine.url)
    if engine.dialect.name == "sqlite":
        with sqlite3.connect(url.database) as c:
            return "\n".join(c.iterdump())
    pg_dump = require_pg_dump(engine.dialect.server_version_info[0])  # skipped locally, fails under CI
    env = dict(os.environ, PGPASSWORD=url.password or "")
    out = subprocess.run([pg_dump, "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
                          "-U", url.username or "postgres", "--data-only", url.database],
                         capture_output=True, env=env, check=True)
    return out.stdout.decode("utf-8")


def test_database_dump_holds_no_plaintext_personal_data(engine, vault):
    loaded = load_roster(engine, vault)
    with engine.connect() as c:  # the roster really is in the database …
        assert c.execute(sa.text("SELECT count(*) FROM items")).scalar_one() == len(loaded.body)
        assert c.execute(sa.text("SELECT count(*) FROM beneficiaries")).scalar_one() == 12
        assert c.execute(sa.text("SELECT count(*) FROM findings")).scalar_one() > 0
    dumps = [_every_text_and_binary_value(engine)]
    native = _native_dump(engine)
    if native is not None:
        assert "INSERT INTO" in native or "COPY public.items" in native
        dumps.append(native)
    needles = _needles(loaded.body)
    for dump in dumps:
        # … the search itself works: a blind index and a masked value of the roster are found
        assert vault.blind_index("id", loaded.body[0][1]) in dump
        leaked = sorted(n for n in needles if n in dump)
        assert leaked == [], f"plaintext personal data in the dump: {len(leaked)} value(s)"


def test_a_plaintext_value_would_be_found(engine, vault):
    """The dump check can fail: a name written in plaintext somewhere is caught."""
    loaded = load_roster(engine, vault, n=3, registered=0)
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO recon_exceptions (kind, detail, created_at, resolved) "
                          "VALUES ('test', :d, '2026-11-02 00:00:00', false)"), {"d": f"name {loaded.body[1][0]}"})
    dump = _every_text_and_binary_value(engine)
    assert [n for n in _needles(loaded.body) if n in dump] == [loaded.body[1][0]]


def test_logs_hold_no_personal_data(engine, vault, caplog):
    stream = io.StringIO()
    logs.configure("DEBUG", stream)
    logging.getLogger("ykt").propagate = True  # let caplog see the same records
    caplog.set_level(logging.DEBUG)
    try:
        loaded = load_roster(engine, vault)
        logging.getLogger("ykt.test").info("roster loaded", extra={"event": "test", "batch": loaded.batch_id})
    finally:
        logging.getLogger("ykt").propagate = False
    text = stream.getvalue() + "\n".join(r.getMessage() + str(vars(r)) for r in caplog.records)
    assert "roster loaded" in text
    assert [n for n in _needles(loaded.body) if n in text] == []
