"""Singleton jobs across several gateway processes.

On PostgreSQL a job takes a session-level advisory lock (``pg_try_advisory_lock``) on a dedicated
connection and holds it while it runs; another process trying the same job gets ``False`` and
skips. On SQLite (one machine by definition) an exclusive ``flock`` on a file beside the database
does the same. Either way the lock disappears with the process if it dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def singleton(engine: sa.Engine, name: str, *, lock_dir: Path | None = None):
    """``with singleton(engine, "dispatch") as got: if got: ...`` — ``got`` is False if another
    process holds the lock right now."""
    if engine.dialect.name == "postgresql":
        conn = engine.connect()
        try:
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(name)}).scalar()
            conn.commit()
            try:
                yield bool(got)
            finally:
                if got:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(name)})
                    conn.commit()
        finally:
            conn.close()
        return
    directory = lock_dir or Path(engine.url.database or "var/x").resolve().parent
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / f".ykt-{name}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            got = True
        except BlockingIOError:
            got = False
        try:
            yield got
        finally:
            if got:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
