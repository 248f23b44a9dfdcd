"""What most commands need: the database, the personal-data vault, the calendar, the clock."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

from sqlalchemy.orm import Session

from gateway.calendar import WorkingDayCalendar
from gateway.db import make_engine
from gateway.privacy import PiiVault


def utcnow() -> dt.datetime:
    """The one place the CLI reads the wall clock (naive UTC); everything below takes ``now``."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@contextmanager
def session_for(ctx):
    engine = make_engine(ctx.db_url)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def find_batch(session, ref: str):
    """A batch by its ref (``GDDL-2026-11-…``) or its numeric id; a plain error if there is none."""
    import sqlalchemy as sa

    from gateway.db.models import Batch
    from gateway.errors import YktError

    q = sa.select(Batch).where(Batch.ref == ref)
    if ref.isdigit():
        q = sa.select(Batch).where(sa.or_(Batch.ref == ref, Batch.id == int(ref)))
    b = session.scalars(q).first()
    if b is None:
        raise YktError(f"no batch {ref!r}", zh=f"没有批次 {ref}")
    return b


def vault_for(ctx, cfg=None) -> PiiVault:
    cfg = cfg or ctx.config()
    return PiiVault.load(cfg.keys_dir / "pii.keys")


def calendar_for(ctx) -> WorkingDayCalendar:
    return WorkingDayCalendar.from_dir(ctx.config_dir / "calendar")


def progress_bar(total: int, description: str, *, enabled: bool = True):
    """A rich progress bar on stderr (or a no-op when disabled, e.g. under --json)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if not enabled:
        class _Null:
            def __enter__(self):
                return self

            def __exit__(self, *a):
                return False

            def advance(self, n: int) -> None:
                pass
        return _Null()

    class _Bar:
        def __enter__(self):
            from rich.console import Console

            self.p = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeRemainingColumn(), console=Console(stderr=True), transient=False)
            self.p.__enter__()
            self.t = self.p.add_task(description, total=total)
            return self

        def __exit__(self, *a):
            return self.p.__exit__(*a)

        def advance(self, n: int) -> None:
            self.p.advance(self.t, n)
    return _Bar()
