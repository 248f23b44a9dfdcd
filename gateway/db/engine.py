"""Engines and sessions. SQLite is the embedded default; any SQLAlchemy URL works."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy import types as sa_types
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
    # the first 64 MB of the file read through the kernel's page cache without copies (the rule
    # engine's look-ups probe large indexes); bounded, because mapped pages count in the process's
    # resident memory: in a run of a million items, 256 MB of them were half the 512 MB budget
    cur.execute("PRAGMA mmap_size=67108864")
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


def insert_rows(conn, table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Append ``rows`` (tuples in ``columns`` order) to ``table`` in one statement run many times.

    The same rows as ``conn.execute(table.insert(), [dict(...), ...])``, stored the same way (a
    date or time goes through its column type's own conversion, once per distinct value), but
    without SQLAlchemy's per-row parameter processing: for the append-only bulk writes (items and
    their events), where that processing costs more than the database. Values are what the column
    types take: int, str, bytes, None, ``datetime.date``/``datetime``. On PostgreSQL the rows
    go in with ``COPY … FROM STDIN`` on the same connection and transaction (its triggers fire as
    for an INSERT).
    """
    if not rows:
        return
    dialect = conn.dialect
    convert = []
    for i, name in enumerate(columns):
        col = table.c[name]
        if col.type._type_affinity in (sa_types.DateTime, sa_types.Date):
            proc = col.type._cached_bind_processor(dialect)
            if proc is not None:
                convert.append((i, proc))
    if convert:
        memo: dict = {}
        out = []
        for r in rows:
            r = list(r)
            for i, proc in convert:
                v = r[i]
                if v is not None:
                    key = (i, v)
                    c = memo.get(key)
                    if c is None:
                        c = memo[key] = proc(v)
                    r[i] = c
            out.append(tuple(r))
        rows = out
    quote = dialect.identifier_preparer.quote
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        # COPY: one stream of rows, no per-row statement round in the server or the driver
        cols = ", ".join(quote(c) for c in columns)
        sql = f"COPY {quote(table.name)} ({cols}) FROM STDIN"
        dbapi = conn.dialect.loaded_dbapi
        try:
            with conn.connection.driver_connection.cursor() as cur:
                with cur.copy(sql) as copy:
                    for r in rows:
                        copy.write_row(r)
        except dbapi.Error as e:  # as SQLAlchemy raises it for any other statement (IntegrityError, ...)
            raise sa_exc.DBAPIError.instance(sql, None, e, dbapi.Error) from e
        return
    if dialect.paramstyle == "qmark":
        marks = ", ".join("?" for _ in columns)
    elif dialect.paramstyle in ("format", "pyformat"):
        marks = ", ".join("%s" for _ in columns)
    else:  # pragma: no cover - other drivers: the ordinary Core insert
        conn.execute(table.insert(), [dict(zip(columns, r)) for r in rows])
        return
    sql = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES ({marks})"
    conn.exec_driver_sql(sql, rows)


def in_values(dialect: str, col, values):
    """``col IN values`` as one bound parameter (a JSON array on SQLite, an array on PostgreSQL),
    so a chunk of thousands of values costs one parameter, not thousands to compile."""
    from sqlalchemy import ARRAY, String, any_, bindparam, cast, func, literal_column, select

    values = list(values)
    if dialect == "sqlite":
        return col.in_(select(literal_column("value")).select_from(func.json_each(bindparam(None, json.dumps(values)))))
    if dialect == "postgresql":
        if all(type(v) is int for v in values) or all(type(v) is str and "," not in v for v in values):
            # one text parameter split by the server: the driver's array dumper is Python, row by row
            text = bindparam(None, ",".join(map(str, values)), type_=String())
            return col == any_(cast(func.string_to_array(text, ","), ARRAY(col.type)))
        return col == any_(bindparam(None, values, type_=ARRAY(col.type)))
    return col.in_(values)
