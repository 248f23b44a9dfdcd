"""Personal data at rest and on screen [Art. 30-35].

* ``PiiVault.encrypt`` / ``decrypt``: AES-256-GCM; the ciphertext names its key id, so keys can
  be rotated (old ciphertexts stay readable while any old key is kept). Each ciphertext is bound to
  the cell it is stored in: the associated data is the header plus the table, the column and the
  row's stable key (:data:`ROW_KEYS`: an item's EndToEndId, a beneficiary's ID blind index …), so
  a ciphertext copied into another row or column fails authentication instead of decrypting to
  somebody else's account. ``PiiVault.read(record, column)`` does this for an ORM object.
* ``PiiVault.blind_index``: HMAC-SHA256 keyed hash for lookups and duplicate checks; the kind
  (``"id"``, ``"account"``, ``"name"``) separates domains so equal strings of different kinds
  never collide.
* ``mask_id`` / ``mask_name`` / ``mask_account``: what anyone without the right to see the full
  value is shown; :class:`MaskingRules` reads the rules from ``config/disclosure.toml``.
* Key management: :func:`init_key_file`, :func:`add_key` (a new current key, old ones kept) and
  :func:`reencrypt` (every ciphertext column moved to the current key, in batches).

Rotation and Art. 15. ``items`` and the other tables holding ciphertext are immutable by trigger.
Keeping every old key readable forever would make rotation trivial, but then a leaked key stays
useful for all data written under it. So rotation re-encrypts, through one narrow door that
migration 0004 opens in those triggers: an UPDATE is allowed only while a row of
``pii_rekey_window`` is visible to the updating transaction, and only if no column other than the
``*_enc`` ciphertexts changes. :func:`reencrypt` inserts that row and deletes it again inside each
batch's transaction (nobody else ever sees it), checks that every new ciphertext decrypts to the
same text and that the text still matches the row's blind index, and records the rotation in the
audit trail. Anyone with raw SQL can open that window too, so the door is narrowed further by
migration 0008: the window row names the key rotated *to*, and a ciphertext may only change from
another key to that one (a swap between two rows under the same key is refused by the database).
What still gets through (a ciphertext of another row that is already under the new key) fails to
decrypt, because it is bound to its cell, and dispatch holds such an item out of every payment file
(``gateway.dispatch.render``). The blind-index key
derives from the *first* key line and never changes, so that line must stay in the file.

>>> mask_id("500236199001011234"), mask_name("欧阳小明"), mask_account("6217000123456789012")
('500236********1234', '欧**明', '***************9012')
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import YktError

_VERSION = b"\x02"  # 2: associated data binds the table, column and row key
KEY_ENV = "YKT_PII_KEY"


class PiiKeyError(YktError):
    """The personal-data key is missing or unusable, or a ciphertext does not open in its cell."""


# table -> the column whose value is the row's stable key; every ciphertext in the table is bound
# to it (the primary key is no use: most rows get theirs only on insert, and the rows are immutable)
ROW_KEYS = {
    "items": "end_to_end_id",
    "beneficiaries": "id_hash",
    "accounts": "account_hash",
    "proxies": "proxy_id_hash",
    "list_entries": "id_hash",
    "emergency_payments": "id_hash",
}


def _cell(table: str, column: str, row) -> bytes:
    return b"\0" + f"{table}\0{column}\0{row}".encode("utf-8")


def _normalise(kind: str, value: str) -> str:
    value = value.strip()
    if kind == "id":
        return value.upper()
    if kind == "account":
        return "".join(value.split())
    return value


class PiiVault:
    """Encrypts and indexes personal data with one current key and any number of old ones.

    ``keys`` maps a key id (up to 8 ASCII characters) to 32 raw bytes; ``current`` names the one
    used for new ciphertexts. The blind-index key is derived from the *first ever* key
    (``index_key``) so that lookups keep working across rotations.
    """

    def __init__(self, keys: dict[str, bytes], current: str, index_key: bytes) -> None:
        if current not in keys:
            raise PiiKeyError(f"current key id {current!r} not among the keys")
        for kid, k in keys.items():
            if len(k) != 32 or not (0 < len(kid.encode()) <= 8):
                raise PiiKeyError(f"key {kid!r} must be 32 bytes with an id of 1-8 characters")
        self._keys = dict(keys)
        self._current = current
        self._index_key = hashlib.sha256(b"ykt-blind-index" + index_key).digest()
        # speed only: one cipher object per key, the current key's header, and the HMAC with its
        # key already absorbed (copied per value) instead of rebuilding them for every value
        self._ciphers = {kid: AESGCM(k) for kid, k in self._keys.items()}
        self._header = _VERSION + current.encode().ljust(8, b"\0")
        self._hmac = hmac.new(self._index_key, digestmod=hashlib.sha256)

    # --- loading -------------------------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str) -> "PiiVault":
        """Lines ``<id> <base64 key>``; the last line is current, the first keys the blind index."""
        pairs = []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                kid, b64 = line.split()
                pairs.append((kid, base64.b64decode(b64, validate=True)))
            except ValueError:
                raise PiiKeyError(f"personal-data key file line {n} is not '<id> <base64 key>'") from None
        if not pairs:
            raise PiiKeyError("personal-data key file holds no key")
        return cls(dict(pairs), pairs[-1][0], pairs[0][1])

    @classmethod
    def load(cls, path: Path | str | None = None) -> "PiiVault":
        """From ``$YKT_PII_KEY`` (the file's text) or the key file; never invents a key."""
        env = os.environ.get(KEY_ENV)
        if env:
            return cls.from_text(env)
        path = Path(path or "var/keys/pii.keys")
        if not path.exists():
            raise PiiKeyError(f"no personal-data key: set {KEY_ENV} or create {path} with `ykt pii-keys init`",)
        return cls.from_text(path.read_text(encoding="ascii"))

    @staticmethod
    def new_key_line(key_id: str | None = None) -> str:
        return f"{key_id or secrets.token_hex(3)} {base64.b64encode(secrets.token_bytes(32)).decode()}"

    # --- use -----------------------------------------------------------------------------------
    @property
    def current_key_id(self) -> str:
        return self._current

    def encrypt(self, plaintext: str, table: str, column: str, row: str) -> bytes:
        """``plaintext`` under the current key, bound to the cell ``table.column`` of the row whose
        stable key (:data:`ROW_KEYS`) is ``row``: it decrypts only with those same three."""
        header = self._header
        nonce = os.urandom(12)  # what secrets.token_bytes(12) returns, without its indirection
        return header + nonce + self._ciphers[self._current].encrypt(
            nonce, plaintext.encode("utf-8"), header + _cell(table, column, row))

    def decrypt(self, blob: bytes, table: str, column: str, row: str) -> str:
        """The plaintext of ``blob`` read from the cell ``table.column`` of row ``row``.

        Raises :class:`PiiKeyError` naming the cell if the blob is not a ciphertext of this format,
        its key is not loaded, or it fails authentication: altered, or made for another cell
        (moved between rows or columns)."""
        where = f"{table}.{column} of {ROW_KEYS.get(table, 'row')} {row}"
        if len(blob) < 1 + 8 + 12 + 16 or blob[:1] != _VERSION:
            raise PiiKeyError(f"{where}: not a personal-data ciphertext of a known version")
        kid = blob[1:9].rstrip(b"\0").decode()
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise PiiKeyError(f"{where}: ciphertext made with key {kid!r}, which is not loaded")
        try:
            return cipher.decrypt(blob[9:21], blob[21:], blob[:9] + _cell(table, column, row)).decode("utf-8")
        except Exception:
            raise PiiKeyError(f"{where}: personal-data ciphertext failed authentication (altered, moved from "
                              "another row or column, or wrong key)") from None

    def read(self, record, column: str) -> str | None:
        """Decrypt ``record.<column>`` of an ORM object (its table and row key taken from it);
        ``None`` for an empty column."""
        blob = getattr(record, column)
        if blob is None:
            return None
        table = record.__tablename__
        return self.decrypt(bytes(blob), table, column, getattr(record, ROW_KEYS[table]))

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def key_id_of(self, blob: bytes) -> str:
        return blob[1:9].rstrip(b"\0").decode()

    def blind_index(self, kind: str, value: str) -> str:
        h = self._hmac.copy()
        h.update(kind.encode() + b"\0" + _normalise(kind, value).encode("utf-8"))
        return h.hexdigest()


def mask_id(value: str, head: int = 6, tail: int = 4) -> str:
    """ID first ``head`` and last ``tail`` characters kept; shorter values are fully masked."""
    v = value.strip()
    if len(v) <= head + tail:
        return "*" * len(v)
    return v[:head] + "*" * (len(v) - head - tail) + v[-tail:]


def mask_name(value: str) -> str:
    """The middle characters masked: 张 -> *, 张三 -> 张*, 张小三 -> 张*三, 欧阳小明 -> 欧**明."""
    v = value.strip()
    if len(v) <= 1:
        return "*" * len(v)
    if len(v) == 2:
        return v[0] + "*"
    return v[0] + "*" * (len(v) - 2) + v[-1]


def mask_account(value: str, tail: int = 4) -> str:
    v = "".join(value.split())
    if len(v) <= tail:
        return "*" * len(v)
    return "*" * (len(v) - tail) + v[-tail:]


# --- masking rules from config ------------------------------------------------------------------
DISCLOSURE_FILE = "disclosure.toml"


@dataclass(frozen=True)
class MaskingRules:
    """How personal data is masked wherever it is shown to someone who may not see it in full.

    Read from ``[masking]`` in ``config/disclosure.toml``; the defaults are the design's: ID first 6
    and last 4, a name's middle characters (a two-character name keeps its first), account last 4.

    >>> r = MaskingRules()
    >>> [r.name(n) for n in ("张", "张三", "张小三", "欧阳小明")]
    ['*', '张*', '张*三', '欧**明']
    >>> r.id("50023619650312101X"), r.account("6217 0001 2345 6789")
    ('500236********101X', '************6789')
    """

    id_head: int = 6
    id_tail: int = 4
    name_keep_first: int = 1
    name_keep_last: int = 1
    account_head: int = 0
    account_tail: int = 4
    mask_char: str = "*"

    def id(self, value: str) -> str:
        return self._keep(value.strip(), self.id_head, self.id_tail)

    def name(self, value: str) -> str:
        v = value.strip()
        if len(v) <= self.name_keep_first + self.name_keep_last:
            # too short to keep both ends: keep at most the first characters, and never the whole name
            head = min(self.name_keep_first, len(v) - 1)
            return v[:max(head, 0)] + self.mask_char * (len(v) - max(head, 0))
        return self._keep(v, self.name_keep_first, self.name_keep_last)

    def account(self, value: str) -> str:
        return self._keep("".join(value.split()), self.account_head, self.account_tail)

    def _keep(self, v: str, head: int, tail: int) -> str:
        if len(v) <= head + tail:
            return self.mask_char * len(v)
        return v[:head] + self.mask_char * (len(v) - head - tail) + (v[len(v) - tail:] if tail else "")

    @classmethod
    def load(cls, config_dir: Path | str) -> "MaskingRules":
        """From ``<config_dir>/disclosure.toml`` (defaults when the file or the table is absent).
        Raises :class:`PiiConfigError` naming the key for anything unknown or out of range."""
        table = read_disclosure_config(config_dir).get("masking", {})
        allowed = {"id": ("head", "tail"), "name": ("keep_first", "keep_last"), "account": ("head", "tail")}
        kw: dict = {}
        for key, value in table.items():
            where = f"{DISCLOSURE_FILE}: masking.{key}"
            if key == "mask_char":
                if not isinstance(value, str) or len(value) != 1:
                    raise PiiConfigError(f"{where} must be one character")
                kw["mask_char"] = value
                continue
            if key not in allowed or not isinstance(value, dict):
                raise PiiConfigError(f"{where}: unknown key (expected id, name, account, mask_char)")
            for k, n in value.items():
                if k not in allowed[key]:
                    raise PiiConfigError(f"{where}.{k}: unknown key (expected {', '.join(allowed[key])})")
                if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 8:
                    raise PiiConfigError(f"{where}.{k} must be a whole number 0-8")
                kw[f"{key}_{k}"] = n
        return cls(**kw)


class PiiConfigError(YktError, ValueError):
    """``config/disclosure.toml`` has a bad value."""


def read_disclosure_config(config_dir: Path | str) -> dict:
    path = Path(config_dir) / DISCLOSURE_FILE
    if not path.exists():
        return {}
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise PiiConfigError(f"{path}: {e}") from None


# --- key files and rotation -------------------------------------------------------------------------
DEFAULT_KEY_FILE = Path("var/keys/pii.keys")


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def init_key_file(path: Path | str = DEFAULT_KEY_FILE) -> str:
    """Create the key file with one key (mode 0600); returns its key id. Refuses to overwrite."""
    path = Path(path)
    if path.exists():
        raise PiiKeyError(f"{path} already exists; use `ykt pii-keys rotate` to add a key")
    line = PiiVault.new_key_line()
    _write_private(path, "# personal-data keys: first line keys the blind index, last line is current\n"
                   + line + "\n")
    return line.split()[0]


def add_key(path: Path | str = DEFAULT_KEY_FILE) -> str:
    """Append a new current key to the key file (old keys stay, for reading); returns its id."""
    path = Path(path)
    text = path.read_text(encoding="ascii")
    vault = PiiVault.from_text(text)
    while True:
        line = PiiVault.new_key_line()
        if line.split()[0] not in vault.key_ids:
            break
    _write_private(path, text.rstrip("\n") + "\n" + line + "\n")
    return line.split()[0]


# (table, ciphertext column) -> (blind-index column, kind) that must still match after re-encryption
BOUND_INDEXES = {
    ("items", "id_number_enc"): ("id_hash", "id"),
    ("items", "account_enc"): ("account_hash", "account"),
    ("beneficiaries", "id_number_enc"): ("id_hash", "id"),
    ("beneficiaries", "name_enc"): ("name_hash", "name"),
    ("accounts", "account_enc"): ("account_hash", "account"),
    ("proxies", "proxy_id_number_enc"): ("proxy_id_hash", "id"),
}


def encrypted_columns(bind) -> dict[str, list[str]]:
    """Every table with ciphertext columns (named ``*_enc``) and those columns."""
    insp = sa.inspect(bind)
    out = {}
    for t in sorted(insp.get_table_names()):
        cols = [c["name"] for c in insp.get_columns(t) if c["name"].endswith("_enc")]
        if cols:
            out[t] = cols
    return out


@dataclass
class ReencryptStats:
    rows_seen: int = 0
    values_reencrypted: int = 0
    tables: dict | None = None


def reencrypt(engine, vault: PiiVault, *, batch_size: int = 500, opened_by: str = "pii-keys rotate",
              progress: Callable[[str, int], None] | None = None) -> ReencryptStats:
    """Re-encrypt every ciphertext not yet under ``vault``'s current key, ``batch_size`` rows per
    transaction (resumable: rows already under the current key are skipped).

    Raises :class:`PiiKeyError` if a ciphertext cannot be decrypted, or if its plaintext no longer
    matches the row's blind index (a row tampered with, or a swapped ciphertext): nothing of that
    batch is written.
    """
    stats = ReencryptStats(tables={})
    window = sa.table("pii_rekey_window", sa.column("id"), sa.column("opened_by"), sa.column("to_key_id"))
    with engine.connect() as c:
        tables = encrypted_columns(c)
    for table, cols in tables.items():
        if table not in ROW_KEYS:
            raise PiiKeyError(f"table {table} holds ciphertext columns {cols} but has no row key in "
                              "gateway.privacy.ROW_KEYS")
        key_col = ROW_KEYS[table]
        bound = {col: BOUND_INDEXES[(table, col)] for col in cols if (table, col) in BOUND_INDEXES}
        t = sa.table(table, sa.column("id"), *(sa.column(x) for x in cols),
                     *(sa.column(x) for x in sorted({key_col, *(h for h, _ in bound.values())})))
        last, changed_here = 0, 0
        while True:
            with engine.begin() as c:
                rows = c.execute(sa.select(t).where(t.c.id > last).order_by(t.c.id).limit(batch_size)).mappings().all()
                if not rows:
                    break
                updates = []
                for r in rows:
                    new = {}
                    for col in cols:
                        blob = r[col]
                        if blob is None or vault.key_id_of(bytes(blob)) == vault.current_key_id:
                            continue
                        cell = (table, col, r[key_col])
                        plain = vault.decrypt(bytes(blob), *cell)
                        if col in bound:
                            hcol, kind = bound[col]
                            if r[hcol] is not None and not hmac.compare_digest(vault.blind_index(kind, plain), r[hcol]):
                                raise PiiKeyError(f"{table} row {r['id']}: {col} does not match {hcol}; "
                                                  "refusing to re-encrypt a tampered row")
                        enc = vault.encrypt(plain, *cell)
                        if vault.decrypt(enc, *cell) != plain:  # pragma: no cover - AES-GCM round trip
                            raise PiiKeyError("re-encryption round trip failed")
                        new[col] = enc
                    if new:
                        updates.append((r["id"], new))
                if updates:
                    c.execute(sa.insert(window).values(opened_by=opened_by[:64], to_key_id=vault.current_key_id))
                    for rid, new in updates:
                        c.execute(sa.update(t).where(t.c.id == rid).values(**new))
                    c.execute(sa.delete(window))
                stats.rows_seen += len(rows)
                n = sum(len(new) for _, new in updates)
                stats.values_reencrypted += n
                changed_here += n
                last = rows[-1]["id"]
            if progress:
                progress(table, len(rows))
        stats.tables[table] = changed_here
    return stats


def remaining_under_old_keys(engine, vault: PiiVault) -> dict[str, int]:
    """How many ciphertexts per table are not under the current key (0 everywhere after rotation)."""
    out = {}
    with engine.connect() as c:
        for table, cols in encrypted_columns(c).items():
            t = sa.table(table, *(sa.column(x) for x in cols))
            n = 0
            for r in c.execute(sa.select(t)).yield_per(1000):
                n += sum(1 for b in r if b is not None and vault.key_id_of(bytes(b)) != vault.current_key_id)
            out[table] = n
    return out
