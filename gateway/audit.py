"""The tamper-evident audit trail: every change, decision and file in or out, hash-chained [Art. 30-35].

Each entry of ``audit_log`` carries ``seq`` (1, 2, 3 … without gaps), ``at`` (naive UTC), ``actor``,
``action``, ``subject``, ``detail`` (canonical JSON text), ``key_id``, ``prev_hash`` and ``hash``:

    hash = HMAC-SHA256(audit key, canonical([seq, at, actor, action, subject, detail, key_id, prev_hash]))

(plain SHA-256 with ``key_id = ""`` when no audit key is configured). With a key, somebody who can
write to the database but has not got the key cannot recompute the chain after editing it.
``prev_hash`` of entry 1 is :data:`GENESIS`. The one-row table ``audit_head`` holds the last
``seq`` and ``hash``; it is the lock two writers queue on (``UPDATE … RETURNING`` takes PostgreSQL's
row lock and SQLite's write lock, so the chain cannot fork) and it lets :func:`verify` see entries
cut off the end. The database refuses UPDATE and DELETE on ``audit_log`` (migration 0004); the
chain still catches whoever drops that trigger.

Use (the caller owns the transaction, so the entry commits or rolls back with the change itself)::

    from gateway import audit
    audit.append(session, actor="clerk:li", action="batch.submitted", subject=f"batch:{ref}",
                 detail={"items": 120, "total_fen": 18000000, "sha256": sha}, now=now)

Three statements per entry (update head, insert entry, update head hash). ``detail`` must hold
no plaintext personal data: refer to items by id or end-to-end id, people by blind index if at
all; values that look like a resident ID number or a card number are refused
(:class:`AuditDataError`).

Recommended action names (``noun.past_participle``; any name of that shape is accepted), with the
subject to use:

=============================  ==========================  ===========================================
action                         subject                     detail
=============================  ==========================  ===========================================
batch.submitted                batch:<ref>                 items, total_fen, sha256, source_name
batch.validated                batch:<ref>                 validated, rejected, review
batch.resubmitted              batch:<ref>                 corrects (ref), items
finding.cleared / .confirmed   finding:<id>                code, note
file.planned / file.sent       outbound:<msg_id>           bank, items, total_fen, sha256
file.received                  inbound:<id>                bank, name, sha256, kind
file.refused                   inbound:<id>                bank, reason
recon.applied                  inbound:<id>                applied, exceptions
funding.recorded               funding:<reference>         bank, amount_fen, value_date
account.declared / .approved   account:<id>                bank, kind (no account number)
account.confirmed / .superseded / .refused
proxy.recorded                 proxy:<id>                  relation, approved_by
list.imported                  list:<kind>:<version>       rows, sha256
user.created / .disabled       user:<username>             role, scope
session.opened / .failed       user:<username>             client (never the secret)
personal_data.viewed           item:<id> / beneficiary:<id>  why (role that may see plaintext)
disclosure.published           notice:<unit>:<policy>:<period>  items, publish_from, publish_to
pii.key_added / pii.reencrypted  pii-key:<key id>           rows, tables
config.changed                 config:<file>               sha256 before / after
=============================  ==========================  ===========================================
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator

import sqlalchemy as sa

from gateway.errors import YktError

GENESIS = "0" * 64
KEY_ENV = "YKT_AUDIT_KEY"
DEFAULT_KEY_FILE = Path("var/keys/audit.keys")
ACTION = re.compile(r"[a-z][a-z_]*(\.[a-z][a-z_]*)+")
_ID = re.compile(r"(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9])")
_CARD = re.compile(r"(?<![0-9])[0-9]{16,19}(?![0-9])")
_SAFE = re.compile(r"[0-9a-f]{64}|YKT[0-9]{18}")
FIELDS = ("seq", "at", "actor", "action", "subject", "detail", "key_id", "prev_hash", "hash")

_TYPES = {"seq": sa.BigInteger(), "at": sa.DateTime(), "detail": sa.Text()}
log_table = sa.table("audit_log", *(sa.column(f, _TYPES.get(f, sa.String())) for f in FIELDS))
head_table = sa.table("audit_head", sa.column("id", sa.Integer()), sa.column("seq", sa.BigInteger()),
                      sa.column("hash", sa.String()))


class AuditError(YktError):
    """The audit trail cannot be written or read."""


class AuditDataError(AuditError, ValueError):
    """An entry was refused: bad action name, or what looks like personal data in its detail."""


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    subject: str
    detail: str  # canonical JSON text, exactly as hashed
    key_id: str
    prev_hash: str
    hash: str

    @property
    def detail_dict(self) -> dict:
        return json.loads(self.detail)


@dataclass(frozen=True)
class Break:
    """Something wrong with the chain, at entry ``seq`` (the first entry that does not check out)."""

    seq: int
    kind: str  # edited | missing | reordered | unkeyed | unknown_key | head
    message: str

    def __str__(self) -> str:
        return f"audit entry {self.seq}: {self.kind}: {self.message}"


class AuditKeys:
    """HMAC keys for the chain: lines ``<id> <base64 key>`` (like the personal-data key file), the
    last one current. Old keys must be kept to verify old entries."""

    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        if current not in keys:
            raise AuditError(f"audit key {current!r} not among the keys")
        self.keys, self.current = dict(keys), current

    @classmethod
    def from_text(cls, text: str) -> "AuditKeys":
        pairs = []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                kid, b64 = line.split()
                key = base64.b64decode(b64, validate=True)
            except ValueError:
                raise AuditError(f"audit key file line {n} is not '<id> <base64 key>'") from None
            if len(key) < 32 or not 0 < len(kid) <= 16:
                raise AuditError(f"audit key file line {n}: key must be >= 32 bytes, id 1-16 characters")
            pairs.append((kid, key))
        if not pairs:
            raise AuditError("audit key file holds no key")
        return cls(dict(pairs), pairs[-1][0])

    @classmethod
    def load(cls, path: Path | str | None = None) -> "AuditKeys | None":
        """From ``$YKT_AUDIT_KEY`` (the file's text) or the key file; ``None`` when neither exists
        (entries are then plain SHA-256, which :func:`verify` reports when it has a key)."""
        env = os.environ.get(KEY_ENV)
        if env:
            return cls.from_text(env)
        p = Path(path or DEFAULT_KEY_FILE)
        return cls.from_text(p.read_text(encoding="ascii")) if p.exists() else None

    @staticmethod
    def new_key_line(key_id: str | None = None) -> str:
        return f"{key_id or 'a' + secrets.token_hex(3)} {base64.b64encode(secrets.token_bytes(32)).decode()}"


_UNSET = object()
_cache: dict = {}


def _default_keys() -> AuditKeys | None:
    """:meth:`AuditKeys.load`, re-read only when the environment or the key file changed."""
    try:
        stamp = (os.environ.get(KEY_ENV), DEFAULT_KEY_FILE.resolve(), DEFAULT_KEY_FILE.stat().st_mtime_ns)
    except OSError:
        stamp = (os.environ.get(KEY_ENV), DEFAULT_KEY_FILE.resolve(), None)
    if _cache.get("stamp") != stamp:
        _cache["keys"], _cache["stamp"] = AuditKeys.load(), stamp
    return _cache["keys"]


def canonical_detail(detail: dict) -> str:
    """The detail as stored and hashed: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _naive_utc(t: dt.datetime) -> dt.datetime:
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return t


def entry_hash(seq: int, at: dt.datetime, actor: str, action: str, subject: str, detail: str, key_id: str,
               prev_hash: str, keys: AuditKeys | None) -> str:
    """The hash of one entry. Raises :class:`AuditError` if ``key_id`` names a key not in ``keys``."""
    msg = json.dumps([seq, _naive_utc(at).isoformat(timespec="microseconds"), actor, action, subject, detail,
                      key_id, prev_hash], ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if not key_id:
        return hashlib.sha256(msg).hexdigest()
    key = keys.keys.get(key_id) if keys else None
    if key is None:
        raise AuditError(f"audit key {key_id!r} is not loaded")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def _check_detail(detail: dict) -> None:
    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(k)
                walk(x)
        elif isinstance(v, (list, tuple, set)):
            for x in v:
                walk(x)
        elif isinstance(v, str):
            if _SAFE.fullmatch(v):
                return  # a SHA-256 digest or one of our message ids: long digit runs, but no person
            if _ID.search(v) or _CARD.search(v):
                raise AuditDataError("audit detail must not contain an ID or account number; "
                                     "refer to the item by id or blind index", zh="审计记录不得包含身份证号或银行账号")

    walk(detail)


def append(session, *, actor: str, action: str, subject: str, detail: dict | None = None, now: dt.datetime,
           keys: AuditKeys | None | object = _UNSET) -> AuditEntry:
    """Append one entry in the caller's transaction and return it.

    ``session`` is a SQLAlchemy ``Session`` or ``Connection``; the caller commits. ``now`` is the
    instant (naive UTC, or aware). ``keys`` defaults to :meth:`AuditKeys.load` (cached per process).
    Raises :class:`AuditDataError` for a malformed action or personal data in ``detail``.
    """
    if not ACTION.fullmatch(action):
        raise AuditDataError(f"audit action {action!r} must look like 'noun.verb' in lower case")
    if not actor or not subject:
        raise AuditDataError("audit entries need an actor and a subject")
    detail = detail or {}
    _check_detail(detail)
    _check_detail({"actor": actor, "subject": subject})
    if keys is _UNSET:
        keys = _default_keys()
    text = canonical_detail(detail)
    at = _naive_utc(now)
    # take the head's lock first: serialises appenders on both databases
    row = session.execute(sa.update(head_table).where(head_table.c.id == 1)
                          .values(seq=head_table.c.seq + 1)
                          .returning(head_table.c.seq, head_table.c.hash)).first()
    if row is None:
        raise AuditError("audit_head row missing: run `ykt db upgrade`")
    seq, prev = row
    key_id = keys.current if keys else ""
    h = entry_hash(seq, at, actor, action, subject, text, key_id, prev, keys)
    session.execute(sa.insert(log_table).values(seq=seq, at=at, actor=actor, action=action, subject=subject,
                                                detail=text, key_id=key_id, prev_hash=prev, hash=h))
    session.execute(sa.update(head_table).where(head_table.c.id == 1).values(hash=h))
    return AuditEntry(seq, at, actor, action, subject, text, key_id, prev, h)


def entries(session, *, after: int = 0, chunk: int = 2000) -> Iterator[AuditEntry]:
    """Every entry in ``seq`` order, read in chunks (memory does not grow with the log)."""
    last = after
    while True:
        rows = session.execute(sa.select(*(log_table.c[f] for f in FIELDS)).where(log_table.c.seq > last)
                               .order_by(log_table.c.seq).limit(chunk)).all()
        if not rows:
            return
        for r in rows:
            yield AuditEntry(*r)
        last = rows[-1][0]


def verify_entries(items: Iterable[AuditEntry], keys: AuditKeys | None, *,
                   head: tuple[int, str] | None = None) -> list[Break]:
    """Check a chain (from the database or an export). Returns every break, each naming its entry.

    * ``edited``: the entry's hash does not match its content (changed after it was written);
    * ``missing``: a gap in ``seq`` (entries deleted);
    * ``reordered``: ``prev_hash`` does not match the previous entry (rows moved, or replaced);
    * ``unkeyed``: an entry without HMAC while ``keys`` is given (anyone could have rebuilt it);
    * ``unknown_key``: an entry keyed with a key not in ``keys`` (or none given): not checkable;
    * ``head``: the last entry is not the one ``audit_head`` records (entries cut off the end).
    """
    breaks: list[Break] = []
    prev_seq, prev_hash = 0, GENESIS
    for e in items:
        if e.seq != prev_seq + 1:
            kind = "missing" if e.seq > prev_seq + 1 else "reordered"
            what = (f"entries {prev_seq + 1}..{e.seq - 1} are missing (deleted)" if kind == "missing"
                    else f"follows entry {prev_seq} out of order")
            breaks.append(Break(e.seq, kind, f"{what}; this entry is {e.action} {e.subject} at {e.at:%Y-%m-%d %H:%M:%S}"))
        elif e.prev_hash != prev_hash:
            breaks.append(Break(e.seq, "reordered", f"does not follow entry {prev_seq} (prev_hash differs): "
                                                     f"{e.action} {e.subject} at {e.at:%Y-%m-%d %H:%M:%S}"))
        if e.key_id == "" and keys is not None:
            breaks.append(Break(e.seq, "unkeyed", "entry has no HMAC although the trail is keyed"))
        try:
            h = entry_hash(e.seq, e.at, e.actor, e.action, e.subject, e.detail, e.key_id, e.prev_hash, keys)
        except AuditError as err:
            breaks.append(Break(e.seq, "unknown_key", str(err)))
        else:
            if not hmac.compare_digest(h, e.hash):
                breaks.append(Break(e.seq, "edited", f"content does not match its hash: {e.action} {e.subject} "
                                                     f"at {e.at:%Y-%m-%d %H:%M:%S} by {e.actor}"))
        prev_seq, prev_hash = e.seq, e.hash
    if head is not None and head != (prev_seq, prev_hash):
        breaks.append(Break(head[0] if head[0] > prev_seq else prev_seq, "head",
                            f"the head records entry {head[0]} but the log ends at entry {prev_seq}"
                            + (" (entries cut off the end)" if head[0] > prev_seq else "")))
    return breaks


def head(session) -> tuple[int, str]:
    """(seq, hash) of the last entry, as ``audit_head`` records it. Give it to auditors as an anchor."""
    return tuple(session.execute(sa.select(head_table.c.seq, head_table.c.hash).where(head_table.c.id == 1)).one())


def verify(session, keys: AuditKeys | None | object = _UNSET) -> list[Break]:
    """Check the whole trail in the database; an empty list means intact."""
    if keys is _UNSET:
        keys = _default_keys()
    return verify_entries(entries(session), keys, head=head(session))


def _row(e: AuditEntry) -> dict:
    d = asdict(e)
    d["at"] = e.at.isoformat(timespec="microseconds")
    return d


def export(session, out: IO[str], fmt: str = "jsonl") -> int:
    """Write the whole chain (every column, hashes included) to the text stream ``out`` as ``jsonl``
    or ``csv``; returns the number of entries. The export can be checked with :func:`read_export` and
    :func:`verify_entries` (with the key, by whoever holds it)."""
    if fmt not in ("jsonl", "csv"):
        raise AuditError(f"export format must be jsonl or csv, not {fmt!r}")
    n = 0
    writer = None
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
    for e in entries(session):
        if writer:
            writer.writerow(_row(e))
        else:
            out.write(json.dumps(_row(e), ensure_ascii=False) + "\n")
        n += 1
    return n


def read_export(stream: IO[str], fmt: str = "jsonl") -> Iterator[AuditEntry]:
    """Entries back from an export made by :func:`export`."""
    rows = csv.DictReader(stream) if fmt == "csv" else (json.loads(line) for line in stream if line.strip())
    for r in rows:
        yield AuditEntry(int(r["seq"]), dt.datetime.fromisoformat(r["at"]), r["actor"], r["action"], r["subject"],
                         r["detail"], r["key_id"] or "", r["prev_hash"], r["hash"])
