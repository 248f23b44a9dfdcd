"""Database: SQLAlchemy 2 models, Alembic migrations, immutability triggers, engine helpers."""

from gateway.db.engine import DEFAULT_URL, database_url, make_engine, session_factory
from gateway.db.migrate import upgrade

__all__ = ["DEFAULT_URL", "database_url", "make_engine", "session_factory", "upgrade"]
