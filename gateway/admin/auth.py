"""Who may use the console and the API, and what each of them may see [Art. 5-9, 30-35].

Roles and their scope (one scope per user)::

    role        scope                     sees / does
    finance     county code   (500236)    everything of its county; may unmask personal data on an item
    department  department    (FJ-MZ)     its own batches, their items, findings, corrections
    unit        unit code     (500236101) its own items only
    bank        bank id       (icbc-cq)   its own bank's files, health and exceptions
    auditor     county or "*"             read-only over its county (or all), audit export
    (public)    no login                  policy list, notices, self-service query

Secrets are bcrypt hashes; sessions are random tokens of which only the SHA-256 is stored, with an
absolute expiry. A console session carries its own CSRF token. API clients send the same kind of
token as ``Authorization: Bearer <token>``.

>>> p = Principal("li", FINANCE, "500236")
>>> p.may_unmask_in("500236"), p.may_unmask_in("500241"), Principal("a", AUDITOR, "*").may_unmask_in("500236")
(True, False, False)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import bcrypt
import sqlalchemy as sa
from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from gateway.db.models import Base
from gateway.errors import YktError

FINANCE, DEPARTMENT, UNIT, BANK, AUDITOR = "finance", "department", "unit", "bank", "auditor"
ROLES = (FINANCE, DEPARTMENT, UNIT, BANK, AUDITOR)
ALL = "*"  # an auditor's scope over every county

CONSOLE, API = "console", "api"
CONSOLE_TTL = dt.timedelta(hours=8)
API_TTL = dt.timedelta(days=30)
BCRYPT_ROUNDS = 12
MIN_SECRET_LENGTH = 10


class AuthError(YktError):
    """A user, role, scope or secret that cannot be accepted."""


class WebUser(Base):
    """A person (or machine client) who may sign in. Disabled, never deleted (the audit trail names them)."""

    __tablename__ = "web_users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(32))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class WebSession(Base):
    """A console session or API token; only the SHA-256 of the token is stored."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # console | api
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


@dataclass(frozen=True)
class Principal:
    """The signed-in user as the web layer sees them: a name, a role and one scope."""

    username: str
    role: str
    scope: str
    csrf_token: str = ""

    def county_of(self, cfg) -> str | None:
        """The county this principal's scope lies in (``None`` for a bank or an all-county auditor)."""
        if self.role in (FINANCE, AUDITOR):
            return None if self.scope == ALL else self.scope
        if self.role == DEPARTMENT:
            d = cfg.departments.get(self.scope)
            return d.county if d else None
        if self.role == UNIT:
            u = cfg.units.get(self.scope)
            return u.county if u else None
        return None

    def may_unmask_in(self, county: str) -> bool:
        """Only the county's own finance bureau sees personal data in full (and that view is audited)."""
        return self.role == FINANCE and self.scope == county

    @property
    def read_only(self) -> bool:
        return self.role == AUDITOR


# --- secrets ---------------------------------------------------------------------------------------

def hash_secret(secret: str, *, rounds: int = BCRYPT_ROUNDS) -> str:
    """A bcrypt hash of ``secret`` (pre-hashed with SHA-256 so bcrypt's 72-byte limit never truncates)."""
    if len(secret) < MIN_SECRET_LENGTH:
        raise AuthError(f"a password needs at least {MIN_SECRET_LENGTH} characters",
                        zh=f"密码至少 {MIN_SECRET_LENGTH} 位")
    return bcrypt.hashpw(_prehash(secret), bcrypt.gensalt(rounds)).decode("ascii")


def check_secret(secret: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(_prehash(secret), hashed.encode("ascii"))
    except ValueError:
        return False


def _prehash(secret: str) -> bytes:
    import base64

    return base64.b64encode(hashlib.sha256(secret.encode("utf-8")).digest())


_DUMMY_HASH = None


def _dummy_hash() -> str:
    """Checked against when the user does not exist, so a wrong name costs as long as a wrong password."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = bcrypt.hashpw(b"x", bcrypt.gensalt(BCRYPT_ROUNDS)).decode("ascii")
    return _DUMMY_HASH


# --- users -----------------------------------------------------------------------------------------

def check_scope(cfg, role: str, scope: str) -> None:
    """Refuse a role that does not exist or a scope that is not in the configuration."""
    known = {FINANCE: cfg.counties, DEPARTMENT: cfg.departments, UNIT: cfg.units, BANK: cfg.banks,
             AUDITOR: {**cfg.counties, ALL: None}}
    if role not in known:
        raise AuthError(f"unknown role {role!r}; one of {', '.join(ROLES)}", zh=f"未知角色 {role}")
    if scope not in known[role]:
        raise AuthError(f"scope {scope!r} is not a known {'county' if role in (FINANCE, AUDITOR) else role} "
                        f"in the configuration", zh=f"配置中没有范围 {scope}")


def add_user(session: Session, cfg, *, username: str, secret: str, role: str, scope: str, now: dt.datetime,
             display_name: str | None = None, rounds: int = BCRYPT_ROUNDS) -> WebUser:
    """Create a user; raises :class:`AuthError` on a taken name, unknown role/scope or short secret."""
    check_scope(cfg, role, scope)
    if not username or len(username) > 64 or not username.isprintable() or " " in username:
        raise AuthError(f"bad username {username!r}", zh="用户名不合规")
    if session.scalar(sa.select(WebUser.id).where(WebUser.username == username)) is not None:
        raise AuthError(f"user {username!r} exists", zh=f"用户 {username} 已存在")
    user = WebUser(username=username, display_name=display_name or username, secret_hash=hash_secret(secret,
                   rounds=rounds), role=role, scope=scope, disabled=False, created_at=now)
    session.add(user)
    session.flush()
    return user


def disable_user(session: Session, username: str) -> None:
    """Disable a user and revoke every session and token they hold."""
    user = session.scalar(sa.select(WebUser).where(WebUser.username == username))
    if user is None:
        raise AuthError(f"no user {username!r}", zh=f"没有用户 {username}")
    user.disabled = True
    session.execute(sa.update(WebSession).where(WebSession.user_id == user.id).values(revoked=True))


def list_users(session: Session) -> list[WebUser]:
    return list(session.scalars(sa.select(WebUser).order_by(WebUser.username)))


# --- sessions --------------------------------------------------------------------------------------

def _sha(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def authenticate(session: Session, username: str, secret: str) -> WebUser | None:
    """The enabled user with this name and secret, or ``None`` (same cost either way)."""
    user = session.scalar(sa.select(WebUser).where(WebUser.username == username))
    if user is None or user.disabled:
        check_secret(secret, _dummy_hash() if user is None else user.secret_hash)
        return None
    return user if check_secret(secret, user.secret_hash) else None


def open_session(session: Session, user: WebUser, *, now: dt.datetime, kind: str = CONSOLE,
                 ttl: dt.timedelta | None = None) -> str:
    """Start a console session or issue an API token; returns the token (shown once, stored hashed)."""
    token = secrets.token_urlsafe(32)
    ttl = ttl or (CONSOLE_TTL if kind == CONSOLE else API_TTL)
    session.add(WebSession(token_sha256=_sha(token), user_id=user.id, kind=kind,
                           csrf_token=secrets.token_urlsafe(24), created_at=now, expires_at=now + ttl,
                           revoked=False))
    session.flush()
    return token


def issue_token(session: Session, username: str, *, now: dt.datetime, ttl: dt.timedelta = API_TTL) -> str:
    """An API bearer token for an enabled user (for ``ykt users token``)."""
    user = session.scalar(sa.select(WebUser).where(WebUser.username == username))
    if user is None or user.disabled:
        raise AuthError(f"no enabled user {username!r}", zh=f"没有可用的用户 {username}")
    return open_session(session, user, now=now, kind=API, ttl=ttl)


def resolve(session: Session, token: str | None, *, now: dt.datetime, kind: str) -> Principal | None:
    """The principal behind a token of ``kind``, or ``None`` if unknown, revoked, expired or disabled."""
    if not token:
        return None
    row = session.execute(
        sa.select(WebSession, WebUser).join(WebUser, WebUser.id == WebSession.user_id)
        .where(WebSession.token_sha256 == _sha(token))).first()
    if row is None:
        return None
    s, user = row
    if s.kind != kind or s.revoked or user.disabled or now >= s.expires_at:
        return None
    return Principal(user.username, user.role, user.scope, s.csrf_token)


def close_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(sa.update(WebSession).where(WebSession.token_sha256 == _sha(token)).values(revoked=True))


def csrf_ok(principal: Principal, submitted: str | None) -> bool:
    return bool(submitted) and bool(principal.csrf_token) and hmac.compare_digest(principal.csrf_token, submitted)
