"""Engines and sessions. SQLite is the embedded default; any SQLAlchemy URL works."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import sessionmaker

DEFAULT_URL = "sqlite:///var/yikatong.db"


def database_url(explicit: str | None = None) -> str:
    """``--db`` if given, else ``YKT_DATABASE_URL``, else the embedded SQLite file."""
    return explicit or os.environ.get("YKT_DATABASE_URL") or DEFAULT_URL


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA mmap_size=268435456")  # read through the page cache: the rule engine's look-ups
    cur.close()


def make_engine(url: str | None = None, **kw) -> Engine:
    """An engine for ``url``; for SQLite, creates the parent folder, turns foreign keys on and
    uses WAL so a reader never blocks the writer."""
    url = database_url(url)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True, **kw)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False, future=True)
